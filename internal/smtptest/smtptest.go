// Package smtptest is an in-process SMTP server for tests: it accepts any
// mail on a loopback port and parses each message into its sender,
// recipients, subject and text and HTML parts, so a test checks what a
// real SMTP client (go-mail) sent.
package smtptest

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one email the server accepted.
type Mail struct {
	From    string
	To      []string
	Subject string
	Text    string
	HTML    string
}

// Sink is an in-process SMTP server that parses what it receives.
type Sink struct {
	mu   sync.Mutex
	t    *testing.T
	mail []Mail
}

// NewServer starts a sink on a loopback port, stopped when the test ends,
// and returns it with its port.
func NewServer(t *testing.T) (*Sink, int) {
	t.Helper()
	sink := &Sink{t: t}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{sink: sink}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink, ln.Addr().(*net.TCPAddr).Port
}

// Received returns the mail accepted so far.
func (s *Sink) Received() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mail)
}

type smtpSession struct {
	sink *Sink
	from string
	to   []string
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	got := Mail{From: s.from, To: s.to}
	got.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return err
	}
	if err := parts(msg.Header.Get("Content-Type"), msg.Body, &got); err != nil {
		s.sink.t.Errorf("email body: %v", err)
	}
	s.sink.mu.Lock()
	s.sink.mail = append(s.sink.mail, got)
	s.sink.mu.Unlock()
	return nil
}

// parts collects the text and HTML parts of a (nested) multipart body;
// mime/multipart undoes their quoted-printable encoding.
func parts(contentType string, body io.Reader, got *Mail) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return errors.New("not multipart: " + mt)
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ct := p.Header.Get("Content-Type")
		var b bytes.Buffer
		if _, err := io.Copy(&b, p); err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(ct, "multipart/"):
			if err := parts(ct, &b, got); err != nil {
				return err
			}
		case strings.HasPrefix(ct, "text/plain"):
			got.Text = b.String()
		case strings.HasPrefix(ct, "text/html"):
			got.HTML = b.String()
		}
	}
}
