package main

import (
	"path/filepath"
	"testing"

	"github.com/aquarium-fish/aquarium-fish/internal/config"
	awsdrv "github.com/aquarium-fish/aquarium-fish/internal/driver/aws"
)

// The real-AWS example config parses, and its aws driver section (the seed's
// keys) passes the driver's own validation.
func TestExampleNodeConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join("..", "..", "examples", "node-aws.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dc, ok := cfg.Driver("aws")
	if !ok {
		t.Fatalf("no aws driver in %+v", cfg.Drivers)
	}
	ac, err := awsdrv.ParseConfig(dc.Cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ac.Region != "us-west-2" || ac.DedicatedPool["mac"] == nil || ac.DedicatedPool["mac"].Type != "mac2.metal" {
		t.Fatalf("aws config: %s", ac)
	}
	if cfg.APIAddress != "127.0.0.1:8001" || cfg.DefaultResourceLifetime.Hours() != 12 {
		t.Fatalf("node config: %+v", cfg)
	}
}
