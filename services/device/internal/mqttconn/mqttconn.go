// Package mqttconn opens the network connections of the service's MQTT
// clients (paho): TCP or TLS by the broker URL's scheme, with reads going
// through a buffer. paho reads every packet in several small reads (the
// type byte, each byte of the length, then the rest), and on a bare
// socket each of them is a system call.
package mqttconn

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// schemes maps the broker URL schemes to whether they use TLS.
var schemes = map[string]bool{"tcp": false, "mqtt": false, "ssl": true, "tls": true, "mqtts": true}

// CheckURL reports whether Dial can open a connection to raw.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("broker URL: %w", err)
	}
	if _, ok := schemes[u.Scheme]; !ok || u.Host == "" {
		return fmt.Errorf("broker URL %q: must be tcp://, mqtt://, ssl://, tls:// or mqtts:// and a host", raw)
	}
	return nil
}

// Dial connects to the broker at u, over TLS with tlsConfig (nil: the
// system's roots) for ssl, tls and mqtts. Without a port it dials 1883, or
// 8883 for TLS. Reads go through a buffer of readBuffer bytes.
func Dial(u *url.URL, timeout time.Duration, tlsConfig *tls.Config, readBuffer int) (net.Conn, error) {
	secure, ok := schemes[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("mqttconn: scheme %q", u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		port := "1883"
		if secure {
			port = "8883"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	d := &net.Dialer{Timeout: timeout}
	var (
		conn net.Conn
		err  error
	)
	if secure {
		conn, err = tls.DialWithDialer(d, "tcp", host, tlsConfig)
	} else {
		conn, err = d.Dial("tcp", host)
	}
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, readBuffer)}, nil
}

// Opener is a paho.OpenConnectionFunc over Dial, with the client's connect
// timeout and TLS configuration.
func Opener(readBuffer int) paho.OpenConnectionFunc {
	return func(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
		return Dial(u, o.ConnectTimeout, o.TLSConfig, readBuffer)
	}
}

// bufferedConn is a net.Conn whose reads go through a buffer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

// Read reads through the buffer.
func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
