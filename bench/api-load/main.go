// Command api-load is a closed-loop load generator for the node API.
//
// It keeps -c connections busy, each sending the next request as soon as the
// previous answer arrived, for -d, and prints throughput and latency
// percentiles. Modes:
//
//	getme-bearer  UserService/GetMe with a Bearer token (from AuthService/Login)
//	getme-basic   UserService/GetMe with HTTP Basic
//	app-list      ApplicationService/List (bearer)
//	alloc         Create -> ALLOCATED latency: -n applications of -label one
//	              after another, each deallocated when allocated
//
// Example (a node started with no config, in another terminal):
//
//	go run ./bench/api-load -mode getme-bearer -c 16 -d 10s
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aquarium-fish/aquarium-fish/internal/tlsutil"
)

type options struct {
	node, dir, user, password, mode, label string
	conns, n                               int
	dur, warmup                            time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.node, "node", "https://127.0.0.1:8001", "node API URL")
	flag.StringVar(&o.dir, "dir", "aquarium-fish-data", "node data dir (CA and admin password)")
	flag.StringVar(&o.user, "user", "admin", "user")
	flag.StringVar(&o.password, "password", "", "password (default: <dir>/admin.password)")
	flag.StringVar(&o.mode, "mode", "getme-bearer", "getme-bearer | getme-basic | app-list | alloc")
	flag.IntVar(&o.conns, "c", 16, "connections (closed loop)")
	flag.DurationVar(&o.dur, "d", 10*time.Second, "measured duration")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up")
	flag.StringVar(&o.label, "label", "", "alloc mode: label uid")
	flag.IntVar(&o.n, "n", 50, "alloc mode: applications")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "api-load:", err)
		os.Exit(1)
	}
}

type client struct {
	hc    *http.Client
	node  string
	authz string
}

func (c *client) call(method string, body string, out any) error {
	req, err := http.NewRequest(http.MethodPost, c.node+"/grpc/aquarium.v2."+method, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", c.authz)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func run(o options) error {
	if o.password == "" {
		b, err := os.ReadFile(filepath.Join(o.dir, "admin.password"))
		if err != nil {
			return fmt.Errorf("-password not given and %w", err)
		}
		o.password = strings.TrimSpace(string(b))
	}
	tr := &http.Transport{MaxIdleConns: o.conns * 2, MaxIdleConnsPerHost: o.conns * 2, MaxConnsPerHost: o.conns, IdleConnTimeout: time.Minute}
	if strings.HasPrefix(o.node, "https://") {
		cfg, err := tlsutil.ClientConfig(filepath.Join(o.dir, tlsutil.CAFile))
		if err != nil {
			return err
		}
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)
		tr.TLSClientConfig = cfg
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	basic := "Basic " + b64(o.user+":"+o.password)
	c := &client{hc: hc, node: o.node, authz: basic}

	var method, body string
	switch o.mode {
	case "getme-basic":
		method, body = "UserService/GetMe", "{}"
	case "getme-bearer", "app-list":
		var login struct {
			Data struct{ Token string } `json:"data"`
		}
		if err := c.call("AuthService/Login", fmt.Sprintf(`{"username":%q,"password":%q}`, o.user, o.password), &login); err != nil {
			return err
		}
		c.authz = "Bearer " + login.Data.Token
		method, body = "UserService/GetMe", "{}"
		if o.mode == "app-list" {
			method = "ApplicationService/List"
		}
	case "alloc":
		return allocLatency(c, o)
	default:
		return fmt.Errorf("-mode %q: unknown", o.mode)
	}
	return closedLoop(c, o, method, body)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func closedLoop(c *client, o options, method, body string) error {
	var measuring atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	lat := make([][]time.Duration, o.conns)
	errs := make([]error, o.conns)
	var errCount, total atomic.Int64
	for i := range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				err := c.call(method, body, nil)
				d := time.Since(t0)
				if err != nil {
					errCount.Add(1)
					errs[i] = err
					continue
				}
				total.Add(1)
				if measuring.Load() {
					lat[i] = append(lat[i], d)
				}
			}
		}()
	}
	time.Sleep(o.warmup)
	errCount.Store(0)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(o.dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return fmt.Errorf("no successful request: %w", errors.Join(errs...))
	}
	slices.Sort(all)
	fmt.Printf("mode=%s method=%s conns=%d duration=%s requests=%d errors=%d total_requests=%d\n", o.mode, method, o.conns, elapsed.Round(time.Millisecond), len(all), errCount.Load(), total.Load())
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		fmt.Printf("load generator CPU: %.1f us/request\n", float64(cpu.Microseconds())/float64(total.Load()))
	}
	fmt.Printf("throughput=%.0f req/s p50=%s p90=%s p99=%s max=%s\n", float64(len(all))/elapsed.Seconds(),
		pct(all, 50), pct(all, 90), pct(all, 99), all[len(all)-1].Round(time.Microsecond))
	return nil
}

func pct(s []time.Duration, p float64) time.Duration {
	i := int(float64(len(s)-1) * p / 100)
	return s[i].Round(time.Microsecond)
}

// allocLatency measures Create -> ALLOCATED through the API, one application
// at a time, polling GetState every 5 ms (the poll adds at most 5 ms).
func allocLatency(c *client, o options) error {
	if o.label == "" {
		return errors.New("-label: required in alloc mode")
	}
	var lat []time.Duration
	for i := range o.n {
		var created struct {
			Data struct{ UID string } `json:"data"`
		}
		t0 := time.Now()
		if err := c.call("ApplicationService/Create", fmt.Sprintf(`{"application":{"label_uid":%q,"metadata":{"N":%d}}}`, o.label, i), &created); err != nil {
			return err
		}
		for {
			var st struct {
				Data struct{ Status string } `json:"data"`
			}
			if err := c.call("ApplicationService/GetState", fmt.Sprintf(`{"application_uid":%q}`, created.Data.UID), &st); err != nil {
				return err
			}
			if st.Data.Status == "ALLOCATED" {
				break
			}
			if st.Data.Status == "ERROR" || time.Since(t0) > 2*time.Minute {
				return fmt.Errorf("application %s: %s", created.Data.UID, st.Data.Status)
			}
			time.Sleep(5 * time.Millisecond)
		}
		lat = append(lat, time.Since(t0))
		if err := c.call("ApplicationService/Deallocate", fmt.Sprintf(`{"application_uid":%q}`, created.Data.UID), nil); err != nil {
			return err
		}
	}
	slices.Sort(lat)
	fmt.Printf("mode=alloc applications=%d p50=%s p90=%s p99=%s max=%s\n", len(lat), pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[len(lat)-1].Round(time.Microsecond))
	return nil
}
