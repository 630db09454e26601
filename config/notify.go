package config

import (
	"net/url"
	"regexp"
	"strings"
)

// This file holds the channels that carry a run's notices to people: Slack
// (a message per run, updated in place, with buttons that decide) and email
// (the fallback, or always), and the links they carry.

// Slack is the Slack app Gatehouse posts as and verifies.
type Slack struct {
	// BotToken authenticates the Web API calls (xoxb-…).
	BotToken string
	// SigningSecret verifies the interactivity requests Slack signs.
	SigningSecret string
	// APIURL is the Web API's base ending in "/" ("" for Slack's own): for
	// tests and proxies.
	APIURL string
}

// Email is the SMTP server notices are sent through.
type Email struct {
	Host string
	Port int
	// TLS is "none", "starttls" (default) or "tls".
	TLS      string
	Username string
	Password string
	From     string
}

// SlackNotify posts a workspace's approval requests to a channel.
type SlackNotify struct {
	Channel     string
	DMApprovers bool
}

// The email modes.
const (
	EmailFallback = "fallback"
	EmailAlways   = "always"
)

// EmailNotify says when a workspace's notices go by email: as the fallback
// of Slack (where Slack is not set up, or its post failed) or always.
type EmailNotify struct {
	Mode string
}

var (
	slackIDPattern      = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	slackChannelPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$|^#?[a-z0-9][a-z0-9._-]{0,79}$`)
	emailPattern        = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)
)

// notify validates a workspace's notify section; nil when it asks for
// nothing.
func (v *validator) notify(p string, rn rawNotify) *Notify {
	n := &Notify{}
	if rn.Webhook != nil {
		n.Webhook = v.webhook(p+".webhook", *rn.Webhook)
	}
	if rn.Slack != nil {
		n.Slack = &SlackNotify{Channel: rn.Slack.Channel, DMApprovers: rn.Slack.DMApprovers}
		switch {
		case rn.Slack.Channel == "" && !rn.Slack.DMApprovers:
			v.add(p+".slack.channel", "required: the channel to post to (an id like C0PRODNET, or a name), unless dm_approvers is on")
		case rn.Slack.Channel != "" && !slackChannelPattern.MatchString(rn.Slack.Channel):
			v.add(p+".slack.channel", "%q is not a Slack channel id or name", rn.Slack.Channel)
		}
	}
	if rn.Email != nil {
		n.Email = &EmailNotify{Mode: rn.Email.Mode}
		switch n.Email.Mode {
		case "":
			n.Email.Mode = EmailFallback
		case EmailFallback, EmailAlways:
		default:
			v.add(p+".email.mode", "unknown mode %q (want fallback or always)", rn.Email.Mode)
		}
	} else if n.Slack != nil {
		// Where Slack is set, email is its fallback unless said otherwise.
		n.Email = &EmailNotify{Mode: EmailFallback}
	}
	if n.Webhook == nil && n.Slack == nil && n.Email == nil {
		return nil
	}
	return n
}

// channels validates the top-level links, Slack and email blocks, and that
// workspaces asking for Slack or email have them.
func (v *validator) channels(raw rawConfig, c *Config) {
	c.PublicURL = v.baseURL("public_url", raw.PublicURL)
	c.TemporalUIURL = v.baseURL("temporal_ui_url", raw.TemporalUIURL)
	if rs := raw.Slack; rs != nil {
		s := &Slack{APIURL: rs.APIURL}
		s.BotToken, _ = v.secret("slack", "bot_token", rs.BotToken, rs.BotTokenEnv)
		s.SigningSecret, _ = v.secret("slack", "signing_secret", rs.SigningSecret, rs.SigningSecretEnv)
		if s.APIURL != "" && (!strings.HasSuffix(s.APIURL, "/") || v.baseURL("slack.api_url", s.APIURL) == "") {
			v.add("slack.api_url", "%q must be an http(s) URL ending in / (slack-go appends the method)", s.APIURL)
		}
		c.Slack = s
	}
	if re := raw.Email; re != nil {
		e := &Email{Host: re.SMTP.Host, Port: 587, TLS: re.SMTP.TLS, From: re.From}
		if re.SMTP.Port != nil {
			e.Port = *re.SMTP.Port
		}
		if e.TLS == "" {
			e.TLS = "starttls"
		}
		if e.Host == "" {
			v.add("email.smtp.host", "required: the SMTP server")
		}
		if e.Port < 1 || e.Port > 65535 {
			v.add("email.smtp.port", "%d is not a port", e.Port)
		}
		if e.TLS != "none" && e.TLS != "starttls" && e.TLS != "tls" {
			v.add("email.smtp.tls", "unknown %q (want none, starttls or tls)", e.TLS)
		}
		if re.SMTP.Username != "" || re.SMTP.UsernameEnv != "" {
			e.Username, _ = v.secret("email.smtp", "username", re.SMTP.Username, re.SMTP.UsernameEnv)
			e.Password, _ = v.secret("email.smtp", "password", re.SMTP.Password, re.SMTP.PasswordEnv)
		}
		if !emailPattern.MatchString(e.From) {
			v.add("email.from", "required: the sender address, like gatehouse@example.com")
		}
		c.Email = e
	}
	for i, w := range c.Workspaces {
		if w.Notify == nil {
			continue
		}
		p := indexPath("workspaces", i) + ".notify"
		if w.Notify.Slack != nil && c.Slack == nil {
			v.add(p+".slack", "needs the top-level slack block (bot token and signing secret)")
		}
		if w.Notify.Email != nil && w.Notify.Email.Mode == EmailAlways && c.Email == nil {
			v.add(p+".email", "needs the top-level email block (SMTP server and sender)")
		}
	}
}

// baseURL checks an absolute http(s) URL and returns it without a trailing
// slash ("" when s is "").
func (v *validator) baseURL(p, s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(p, "%q is not an absolute http or https URL", s)
		return ""
	}
	return strings.TrimRight(s, "/")
}

// RunURL is the link to a run's page in the web UI, which every message
// about the run carries: "" without a public_url.
func (c *Config) RunURL(workspace, id string) string {
	if c.PublicURL == "" {
		return ""
	}
	return c.PublicURL + "/ui/workspaces/" + url.PathEscape(workspace) + "/runs/" + url.PathEscape(id)
}
