// Package mosquittotest runs a real Mosquitto 2 broker with the
// dynamic-security plugin on a private port, for the tests and benchmarks
// of the BROKER_MODE=mosquitto path. A machine without Mosquitto skips
// them, except in CI (CI=true), where that fails: scripts/test-services.sh
// installs it.
package mosquittotest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Plugin is Debian's dynamic-security plugin.
const Plugin = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"

// Options configures a broker.
type Options struct {
	// AdminPassword is the password of the dynamic-security admin, "admin".
	AdminPassword string
	// Persist keeps sessions and queued messages across Stop and Start.
	Persist bool
	// Config holds more configuration lines, e.g. "max_inflight_messages 0".
	Config string
}

// Broker is a running (or stopped) mosquitto.
type Broker struct {
	// URL is where clients connect, tcp://127.0.0.1:port.
	URL string

	tb        testing.TB
	bin, conf string
	addr      string
	adminPass string
	log       *os.File
	cmd       *exec.Cmd
}

// Start runs a broker until tb ends.
func Start(tb testing.TB, o Options) *Broker {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/mosquitto"); statErr == nil {
			bin, err = "/usr/sbin/mosquitto", nil
		}
	}
	_, ctrlErr := exec.LookPath("mosquitto_ctrl")
	_, pluginErr := os.Stat(Plugin)
	if err != nil || ctrlErr != nil || pluginErr != nil {
		msg := fmt.Sprintf("mosquitto, mosquitto_ctrl or the dynamic-security plugin missing: %v %v %v", err, ctrlErr, pluginErr)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	dir := tb.TempDir()
	dsFile := filepath.Join(dir, "dynamic-security.json")
	if out, err := exec.Command("mosquitto_ctrl", "dynsec", "init", dsFile, "admin", o.AdminPassword).CombinedOutput(); err != nil {
		tb.Fatalf("mosquitto_ctrl dynsec init: %v: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	body := fmt.Sprintf("per_listener_settings false\nplugin %s\nplugin_opt_config_file %s\nlistener %d 127.0.0.1\nallow_anonymous false\n",
		Plugin, dsFile, port)
	if o.Persist {
		body += "persistence true\npersistence_location " + dir + "/\n"
	} else {
		body += "persistence false\n"
	}
	if os.Geteuid() == 0 {
		// Run as root, mosquitto would switch to user mosquitto, who cannot
		// read the test's temporary directory.
		body += "user root\n"
	}
	body += o.Config + "\n"
	b := &Broker{URL: fmt.Sprintf("tcp://127.0.0.1:%d", port), tb: tb, bin: bin, conf: filepath.Join(dir, "mosquitto.conf"),
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), adminPass: o.AdminPassword}
	if err := os.WriteFile(b.conf, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	if b.log, err = os.Create(filepath.Join(dir, "mosquitto.log")); err != nil {
		tb.Fatal(err)
	}
	b.Start()
	tb.Cleanup(func() {
		b.kill(syscall.SIGKILL)
		if tb.Failed() {
			if out, err := os.ReadFile(b.log.Name()); err == nil {
				tb.Logf("mosquitto log:\n%s", out)
			}
		}
	})
	return b
}

// Start starts a stopped broker again, on the same port and state, and
// waits until it listens.
func (b *Broker) Start() {
	b.tb.Helper()
	b.cmd = exec.Command(b.bin, "-c", b.conf)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		b.tb.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", b.addr)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.tb.Fatalf("mosquitto did not listen on %s", b.addr)
		}
	}
}

// Stop stops the broker the way an operator restarting it does (SIGTERM):
// with Persist, it saves its sessions and queued messages first.
func (b *Broker) Stop() {
	b.tb.Helper()
	b.kill(syscall.SIGTERM)
}

func (b *Broker) kill(sig syscall.Signal) {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(sig)
	_ = b.cmd.Wait()
	b.cmd = nil
}

// Ctl runs `mosquitto_ctrl dynsec args...` against the broker as its admin.
func (b *Broker) Ctl(args ...string) {
	b.tb.Helper()
	host, port, _ := net.SplitHostPort(b.addr)
	full := append([]string{"-h", host, "-p", port, "-u", "admin", "-P", b.adminPass, "dynsec"}, args...)
	if out, err := exec.Command("mosquitto_ctrl", full...).CombinedOutput(); err != nil {
		b.tb.Fatalf("mosquitto_ctrl %v: %v: %s", args, err, out)
	}
}

// AddClient creates a client allowed every topic, as the service account
// of the platform's broker configuration is.
func (b *Broker) AddClient(username, password string) {
	b.tb.Helper()
	role := "all-" + username
	b.Ctl("createRole", role)
	for _, acl := range []string{"publishClientSend", "publishClientReceive", "subscribePattern"} {
		b.Ctl("addRoleACL", role, acl, "#", "allow")
	}
	b.Ctl("createClient", username, "-p", password)
	b.Ctl("addClientRole", username, role)
}
