package main

import (
	"testing"
	"time"
)

// The README documents these variables; each must reach the stack's options.
func TestParseOptionsReadsTheEnvironment(t *testing.T) {
	t.Setenv("DEV_DIR", "/tmp/somewhere")
	t.Setenv("DEV_RESET", "1")
	t.Setenv("GATEWAY_ADDR", "127.0.0.1:9090")
	t.Setenv("BANK_ADDR", "127.0.0.1:9000")
	t.Setenv("BANK_MIN_DELAY", "1s")
	t.Setenv("BANK_MAX_DELAY", "2500ms")
	t.Setenv("CONTROLLER_REPLICAS", "2")
	t.Setenv("BANK_URL", "http://127.0.0.1:9999")
	o, err := parseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.DevDir != "/tmp/somewhere" || !o.Reset || o.GatewayAddr != "127.0.0.1:9090" || o.BankAddr != "127.0.0.1:9000" ||
		o.BankMinDelay != time.Second || o.BankMaxDelay != 2500*time.Millisecond || o.ControllerReplicas != 2 ||
		o.BankURL != "http://127.0.0.1:9999" || !o.Restart {
		t.Fatalf("options = %+v", o)
	}
}

func TestParseOptionsDefaultsAndFlagsOverTheEnvironment(t *testing.T) {
	for _, name := range []string{
		"DEV_DIR", "DEV_RESET", "GATEWAY_ADDR", "BANK_ADDR", "BANK_MIN_DELAY", "BANK_MAX_DELAY", "CONTROLLER_REPLICAS", "BANK_URL",
	} {
		t.Setenv(name, "")
	}
	o, err := parseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.DevDir != ".dev" || o.Reset || o.GatewayAddr != "127.0.0.1:8080" || o.BankAddr != "127.0.0.1:8000" ||
		o.BankMinDelay != 5*time.Second || o.BankMaxDelay != 20*time.Second || o.ControllerReplicas != 1 ||
		o.BankURL != "" {
		t.Fatalf("defaults = %+v", o)
	}
	t.Setenv("GATEWAY_ADDR", "127.0.0.1:9090")
	if o, err = parseOptions([]string{"-gateway-addr", "127.0.0.1:7070"}); err != nil || o.GatewayAddr != "127.0.0.1:7070" {
		t.Fatalf("the flag did not win over the environment: %v %+v", err, o)
	}
}

func TestParseOptionsRefusesBadValues(t *testing.T) {
	for name, env := range map[string][2]string{
		"a duration without unit": {"BANK_MIN_DELAY", "5"},
		"a zero longest delay":    {"BANK_MAX_DELAY", "0s"},
		"a reset that is no bool": {"DEV_RESET", "please"},
		"no controller":           {"CONTROLLER_REPLICAS", "0"},
		"replicas not a number":   {"CONTROLLER_REPLICAS", "two"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(env[0], env[1])
			if _, err := parseOptions(nil); err == nil {
				t.Fatalf("%s=%s accepted", env[0], env[1])
			}
		})
	}
}
