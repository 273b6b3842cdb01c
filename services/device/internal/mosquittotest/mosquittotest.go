// Package mosquittotest runs a real Mosquitto 2 broker with the
// dynamic-security plugin on a private port, for the tests and benchmarks
// of the BROKER_MODE=mosquitto path, and can seed its plugin with
// thousands of devices at once (Seed). A machine without Mosquitto skips
// them, except in CI (CI=true), where that fails: scripts/test-services.sh
// installs it.
package mosquittotest

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/comfortech/platform/services/device/dynsec"
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
	dsFile    string
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
		dsFile: dsFile, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), adminPass: o.AdminPassword}
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

// Pid is the process id of the running broker, 0 when it is stopped.
func (b *Broker) Pid() int {
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Heap returns the bytes the broker has allocated and not freed, its
// plugins' included, as it last published them on $SYS/broker/heap/current
// (it publishes them every sys_interval, 10 s by default, when they have
// changed). Unlike its RSS, this does not count what its allocator keeps
// of the memory it freed. Heap asks as the dynamic-security admin.
func (b *Broker) Heap() int64 {
	b.tb.Helper()
	got := make(chan string, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL).SetClientID("mosquittotest-heap").
		SetUsername("admin").SetPassword(b.adminPass).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.tb.Fatalf("mosquittotest: connect as admin: %v", tok.Error())
	}
	defer c.Disconnect(0)
	tok := c.Subscribe("$SYS/broker/heap/current", 0, func(_ paho.Client, m paho.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.tb.Fatalf("mosquittotest: subscribe to $SYS/broker/heap/current: %v", tok.Error())
	}
	select {
	case v := <-got:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.tb.Fatalf("mosquittotest: $SYS/broker/heap/current: %v", err)
		}
		return n
	case <-time.After(15 * time.Second):
		b.tb.Fatal("mosquittotest: no $SYS/broker/heap/current (a Mosquitto built without memory tracking?)")
		return 0
	}
}

// SecurityFile is the dynamic-security plugin's configuration file. The
// plugin reads it when the broker starts and rewrites it whole after
// every change made through its control topic.
func (b *Broker) SecurityFile() string { return b.dsFile }

// The plugin's password hashing (plugins/dynamic-security/auth.c and
// src/password_mosq.h in Mosquitto 2.0): PBKDF2-HMAC-SHA512 with a random
// salt of 12 bytes and 101 iterations for every new password.
const (
	saltLen    = 12
	iterations = 101
)

// The plugin's configuration file, as far as Seed writes it; what it
// reads back is kept as it is.
type (
	fileClient struct {
		Username   string           `json:"username"`
		Roles      []dynsec.RoleRef `json:"roles"`
		Password   string           `json:"password"`
		Salt       string           `json:"salt"`
		Iterations int              `json:"iterations"`
	}
	fileRole struct {
		Rolename string       `json:"rolename"`
		ACLs     []dynsec.ACL `json:"acls"`
	}
)

// Seed writes a client and a role for each of devs into the plugin's
// configuration file of the stopped broker, as the plugin itself saves
// what dynsec.Client.AddDevice creates (the password hashed as the plugin
// hashes it), so that they are there when the broker starts again:
// Stop, Seed, Start. Creating thousands of devices through the control
// topic is impractical: the plugin rewrites its whole file after every
// change, so each device takes longer than the one before (measured here:
// 38 s for the first thousand, 170 s for the third).
func (b *Broker) Seed(devs []dynsec.Device) {
	b.tb.Helper()
	if b.cmd != nil {
		b.tb.Fatal("mosquittotest: Seed needs a stopped broker (the plugin would overwrite the file)")
	}
	body, err := os.ReadFile(b.dsFile)
	if err != nil {
		b.tb.Fatal(err)
	}
	var conf map[string]json.RawMessage
	var clients, roles []json.RawMessage
	if err := json.Unmarshal(body, &conf); err != nil {
		b.tb.Fatalf("mosquittotest: %s: %v", b.dsFile, err)
	}
	for key, list := range map[string]*[]json.RawMessage{"clients": &clients, "roles": &roles} {
		if len(conf[key]) > 0 {
			if err := json.Unmarshal(conf[key], list); err != nil {
				b.tb.Fatalf("mosquittotest: %s: %s: %v", b.dsFile, key, err)
			}
		}
	}
	// The plugin keeps clients and roles in hash tables by name, which a
	// duplicate would corrupt.
	clientNames, roleNames := map[string]bool{}, map[string]bool{}
	for _, c := range clients {
		var fc fileClient
		_ = json.Unmarshal(c, &fc)
		clientNames[fc.Username] = true
	}
	for _, r := range roles {
		var fr fileRole
		_ = json.Unmarshal(r, &fr)
		roleNames[fr.Rolename] = true
	}
	for _, d := range devs {
		if clientNames[d.Username] || roleNames[d.Role] {
			b.tb.Fatalf("mosquittotest: Seed: client %s or role %s exists already", d.Username, d.Role)
		}
		clientNames[d.Username], roleNames[d.Role] = true, true
		salt := make([]byte, saltLen)
		_, _ = rand.Read(salt)
		hash, err := pbkdf2.Key(sha512.New, d.Password, salt, iterations, sha512.Size)
		if err != nil {
			b.tb.Fatal(err)
		}
		role, err := json.Marshal(fileRole{Rolename: d.Role, ACLs: d.ACLs})
		if err != nil {
			b.tb.Fatal(err)
		}
		client, err := json.Marshal(fileClient{Username: d.Username, Roles: []dynsec.RoleRef{{Rolename: d.Role}},
			Password: base64.StdEncoding.EncodeToString(hash), Salt: base64.StdEncoding.EncodeToString(salt),
			Iterations: iterations})
		if err != nil {
			b.tb.Fatal(err)
		}
		roles, clients = append(roles, role), append(clients, client)
	}
	for key, list := range map[string][]json.RawMessage{"clients": clients, "roles": roles} {
		if conf[key], err = json.Marshal(list); err != nil {
			b.tb.Fatal(err)
		}
	}
	if body, err = json.Marshal(conf); err != nil {
		b.tb.Fatal(err)
	}
	if err := os.WriteFile(b.dsFile, body, 0o600); err != nil {
		b.tb.Fatal(err)
	}
}
