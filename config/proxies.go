package config

import "net/netip"

// The reverse proxies in front of the gateway: only their X-Forwarded-For
// is believed when the gateway counts failed sign-ins per client.

// trustedProxies validates trusted_proxies: addresses (taken as a prefix of
// their full length) or CIDR prefixes.
func (v *validator) trustedProxies(list []string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			v.add(indexPath("trusted_proxies", i), "%q is neither an IP address nor a CIDR prefix like 10.0.0.0/8", s)
			continue
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out
}
