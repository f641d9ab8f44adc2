package config

import (
	"log/slog"
)

// LogValue makes a Config safe to log: it never includes the database DSN
// (it may carry a password) or driver configurations (they carry
// credentials), only the database kind and the driver names.
func (c *Config) LogValue() slog.Value {
	db := "sqlite:" + c.SQLitePath()
	if c.IsPostgres() {
		db = "postgres"
	}
	names := make([]string, len(c.Drivers))
	for i, d := range c.Drivers {
		names[i] = d.Name
	}
	return slog.GroupValue(
		slog.String("node_name", c.NodeName),
		slog.String("node_location", c.NodeLocation),
		slog.String("api_address", c.APIAddress),
		slog.String("node_address", c.NodeAddress),
		slog.String("directory", c.Directory),
		slog.String("database", db),
		slog.Duration("default_resource_lifetime", c.DefaultResourceLifetime),
		slog.Int("allocation_retry", c.AllocationRetry),
		slog.Duration("db_cleanup_interval", c.DBCleanupInterval),
		slog.Duration("label_remove_at_min", c.LabelRemoveAtMin),
		slog.Duration("label_remove_at_max", c.LabelRemoveAtMax),
		slog.Any("node_identifiers", c.NodeIdentifiers),
		slog.Uint64("node_slots_limit", uint64(c.NodeSlotsLimit)),
		slog.Bool("tls_disabled", c.TLS.Disabled),
		slog.Any("drivers", names),
	)
}

// LogValue logs only the driver name: its configuration carries credentials.
func (d DriverConfig) LogValue() slog.Value {
	return slog.StringValue(d.Name)
}
