// Package core holds the domain types of the node: labels, definitions,
// applications, their states, resources and tasks. It knows nothing about
// clouds or storage.
package core

import (
	"encoding/json"
	"time"
)

// Status is the state of an application.
type Status string

// Application states. NEW/ELECTED/ALLOCATED are active; DEALLOCATED/ERROR are dead.
const (
	StatusNew         Status = "NEW"
	StatusElected     Status = "ELECTED"
	StatusAllocated   Status = "ALLOCATED"
	StatusDeallocate  Status = "DEALLOCATE"
	StatusDeallocated Status = "DEALLOCATED"
	StatusError       Status = "ERROR"
)

// Label describes what a machine looks like, as an ordered list of
// definitions (one per driver option, tried in order).
type Label struct {
	UID         string          `json:"uid"`
	Name        string          `json:"name"`
	Version     int             `json:"version"`
	OwnerName   string          `json:"owner_name,omitempty"`
	Definitions []Definition    `json:"definitions"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	VisibleFor  []string        `json:"visible_for,omitempty"`
	RemoveAt    *time.Time      `json:"remove_at,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
}

// Definition is one way to provide a label: a driver with its options.
type Definition struct {
	Driver         string          `json:"driver"`
	Images         []Image         `json:"images,omitempty"`
	Options        json.RawMessage `json:"options,omitempty"` // driver-specific object
	Resources      Resources       `json:"resources"`
	Authentication *Authentication `json:"authentication,omitempty"`
}

// Image is an image reference of a definition.
type Image struct {
	Name    string `json:"name,omitempty"`
	URL     string `json:"url,omitempty"`
	Version string `json:"version,omitempty"`
	Tag     string `json:"tag,omitempty"`
	Sum     string `json:"sum,omitempty"`
}

// Resources are the hardware a definition asks for.
type Resources struct {
	Cpu        uint            `json:"cpu,omitempty"`
	Ram        uint            `json:"ram,omitempty"`
	Disks      map[string]Disk `json:"disks,omitempty"`
	Network    string          `json:"network,omitempty"`
	NodeFilter []string        `json:"node_filter,omitempty"`
	// Lifetime in "1h2m3s" form (d/w/M/y accepted): "" or "0" = node default,
	// negative = no timeout.
	Lifetime string `json:"lifetime,omitempty"`
	Slots    *uint  `json:"slots,omitempty"`
}

// Disk describes one disk of a definition; the map key is the path/device.
type Disk struct {
	Type  string `json:"type,omitempty"`
	Label string `json:"label,omitempty"`
	Size  uint   `json:"size,omitempty"`
	Clone string `json:"clone,omitempty"`
	Reuse bool   `json:"reuse,omitempty"`
}

// Authentication is how to log in to a resource.
type Authentication struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Key      string `json:"key,omitempty"`
	Port     int    `json:"port,omitempty"`
}

// Application is a request for one machine of a label. Immutable.
type Application struct {
	UID       string          `json:"uid"`
	OwnerName string          `json:"owner_name,omitempty"`
	LabelUID  string          `json:"label_uid"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

// ApplicationState is one entry of an application's state history.
type ApplicationState struct {
	UID            string    `json:"uid"`
	ApplicationUID string    `json:"application_uid"`
	Status         Status    `json:"status"`
	Description    string    `json:"description,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// Resource is what a driver allocated for an application.
type Resource struct {
	UID             string          `json:"uid"`
	ApplicationUID  string          `json:"application_uid"`
	NodeName        string          `json:"node_name,omitempty"`
	LabelUID        string          `json:"label_uid"`
	DefinitionIndex int             `json:"definition_index"`
	Identifier      string          `json:"identifier"`
	IPAddr          string          `json:"ip_addr,omitempty"`
	HwAddr          string          `json:"hw_addr,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"` // merged app+label metadata
	Timeout         *time.Time      `json:"timeout,omitempty"`  // absolute deadline, nil = none
	Authentication  *Authentication `json:"authentication,omitempty"`
	// DriverData is opaque state the driver needs to find and clean up the
	// resource later (e.g. a generated key pair name, a pool host id).
	DriverData json.RawMessage `json:"driver_data,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
}

// TaskWhen values: when an application task runs.
const (
	TaskWhenAllocated  = StatusAllocated
	TaskWhenDeallocate = StatusDeallocate
)

// Task is an action a driver runs on an allocated resource (snapshot, image, ...).
type Task struct {
	UID            string          `json:"uid"`
	ApplicationUID string          `json:"application_uid"`
	Task           string          `json:"task"`
	When           Status          `json:"when"`
	Options        json.RawMessage `json:"options,omitempty"`
	Result         json.RawMessage `json:"result,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}
