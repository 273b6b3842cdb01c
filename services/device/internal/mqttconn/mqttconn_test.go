package mqttconn_test

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/comfortech/platform/services/device/internal/mqttconn"
)

func TestCheckURL(t *testing.T) {
	for _, raw := range []string{"tcp://broker:1883", "mqtt://broker", "ssl://broker:8883", "tls://broker", "mqtts://broker"} {
		if err := mqttconn.CheckURL(raw); err != nil {
			t.Errorf("CheckURL(%q): %v", raw, err)
		}
	}
	for _, raw := range []string{"http://broker:1883", "broker:1883", "tcp://", "ws://broker/mqtt", "tcp://broker:1883/%zz"} {
		if err := mqttconn.CheckURL(raw); err == nil {
			t.Errorf("CheckURL(%q) accepted", raw)
		}
	}
}

// TestDialReadsPackets reads packets the broker wrote in one go, which a
// reader going back to the socket for every small read also would: what
// matters is that nothing read ahead into the buffer is lost.
func TestDialReadsPackets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		var wire []byte
		for id := range uint16(3) {
			ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
			ack.MessageID = id + 1
			wire = append(wire, encode(t, ack)...)
		}
		_, _ = c.Write(wire)
		time.Sleep(time.Second)
	}()
	c, err := mqttconn.Dial(&url.URL{Scheme: "tcp", Host: l.Addr().String()}, time.Second, nil, 1024)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for want := uint16(1); want <= 3; want++ {
		p, err := packets.ReadPacket(c)
		if err != nil {
			t.Fatal(err)
		}
		if ack, ok := p.(*packets.PubackPacket); !ok || ack.MessageID != want {
			t.Fatalf("packet %d: %v", want, p)
		}
	}
}

func TestDialTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig
	u := &url.URL{Scheme: "mqtts", Host: srv.Listener.Addr().String()}
	c, err := mqttconn.Dial(u, time.Second, cfg, 1024)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	status := make([]byte, 12)
	if _, err := c.Read(status); err != nil || string(status) != "HTTP/1.0 404" {
		t.Fatalf("over TLS: %q %v", status, err)
	}
	// The same server refuses a client that does not trust its certificate.
	if _, err := mqttconn.Dial(u, time.Second, &tls.Config{MinVersion: tls.VersionTLS12}, 1024); err == nil {
		t.Fatal("dialed a server whose certificate is not trusted")
	}
}

func encode(t *testing.T, p packets.ControlPacket) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
