package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/app"
)

// temporalFlags binds TLS to the Temporal cluster, with the temporal CLI's
// flag names and environment variables, so one environment serves both
// tools. They override the config's temporal block field by field.
func temporalFlags(cmd *cobra.Command, c *app.TemporalConn) {
	f := cmd.Flags()
	f.StringVar(&c.CertFile, "tls-cert-path", os.Getenv("TEMPORAL_TLS_CERT"), "client certificate (PEM) for mTLS to Temporal (env TEMPORAL_TLS_CERT)")
	f.StringVar(&c.KeyFile, "tls-key-path", os.Getenv("TEMPORAL_TLS_KEY"), "the client certificate's private key (env TEMPORAL_TLS_KEY)")
	f.StringVar(&c.CAFile, "tls-ca-path", os.Getenv("TEMPORAL_TLS_CA"), "CA certificates (PEM) Temporal's certificate must chain to; default: the system's (env TEMPORAL_TLS_CA)")
	f.StringVar(&c.ServerName, "tls-server-name", os.Getenv("TEMPORAL_TLS_SERVER_NAME"), "name Temporal's certificate must carry; default: the host of --temporal-addr (env TEMPORAL_TLS_SERVER_NAME)")
	c.TLS = os.Getenv("TEMPORAL_TLS")
	// A secret: the environment only, never a flag (flags show in ps).
	c.APIKey = os.Getenv("TEMPORAL_API_KEY")
}
