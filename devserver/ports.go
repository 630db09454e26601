package devserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// endpoint is a parsed host:port option. ip is what we bind on; port 0 means
// "pick one".
type endpoint struct {
	ip   net.IP
	port int
}

// parseEndpoint accepts "ip:port" or "localhost:port". Host names other than
// localhost are refused: the value is used as a bind address for several
// listeners and as the address the services dial each other on, and a name
// that resolves to several addresses would make both ambiguous.
func parseEndpoint(field, addr string) (endpoint, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return endpoint{}, fmt.Errorf("%s %q: want host:port: %w", field, addr, err)
	}
	var ip net.IP
	switch host {
	case "":
		return endpoint{}, fmt.Errorf("%s %q: missing IP address, e.g. 127.0.0.1%s", field, addr, addr)
	case "localhost":
		ip = net.IPv4(127, 0, 0, 1)
	default:
		if ip = net.ParseIP(host); ip == nil {
			return endpoint{}, fmt.Errorf("%s %q: host must be an IP address or localhost", field, addr)
		}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return endpoint{}, fmt.Errorf("%s %q: invalid port %q", field, addr, portStr)
	}
	return endpoint{ip: ip, port: port}, nil
}

// String is the address to listen on.
func (e endpoint) String() string {
	return net.JoinHostPort(e.ip.String(), strconv.Itoa(e.port))
}

// dialHost is the host to connect to: a server bound on 0.0.0.0 or :: is
// reached via loopback, since the unspecified address is not a destination.
func (e endpoint) dialHost() string {
	if e.ip.IsUnspecified() {
		if e.ip.To4() != nil {
			return "127.0.0.1"
		}
		return "::1"
	}
	return e.ip.String()
}

func (e endpoint) dialAddr() string {
	return net.JoinHostPort(e.dialHost(), strconv.Itoa(e.port))
}

// portReservation holds listeners on the ports the server will use, from the
// moment they are checked or picked until just before the server binds them.
// Holding them all at once guarantees the picks differ from each other (the
// kernel may hand out a just-closed ephemeral port again) and narrows the
// window in which another process could take one.
type portReservation struct {
	listeners []net.Listener
}

// reserve listens on ip:port (port 0 lets the kernel pick) and returns the
// port actually held.
func (r *portReservation) reserve(ip net.IP, port int) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	r.listeners = append(r.listeners, l)
	return l.Addr().(*net.TCPAddr).Port, nil
}

// release closes every held listener so the server can bind the ports.
// Go listeners set SO_REUSEADDR, so the closed ports are immediately bindable
// again despite any TIME_WAIT state.
func (r *portReservation) release() error {
	var errs []error
	for _, l := range r.listeners {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	r.listeners = nil
	return errors.Join(errs...)
}
