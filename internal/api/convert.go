package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tsPtr(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// toStruct converts a stored JSON object; bad stored data yields nil.
func toStruct(raw json.RawMessage) *structpb.Struct {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, st); err != nil {
		// Not an object (e.g. a task result that is a list): wrap it.
		var v structpb.Value
		if protojson.Unmarshal(raw, &v) != nil {
			return nil
		}
		return &structpb.Struct{Fields: map[string]*structpb.Value{"value": &v}}
	}
	return st
}

// fromStruct converts a request object to stored JSON (nil -> nil). The
// protobuf JSON encoder prints whole numbers as integers (1000000, not 1e+06).
func fromStruct(st *structpb.Struct) (json.RawMessage, error) {
	if st == nil {
		return nil, nil
	}
	b, err := protojson.Marshal(st)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(b), nil
}

func labelToPB(l *core.Label) *pb.Label {
	out := &pb.Label{
		Uid: l.UID, Name: l.Name, Version: int32(l.Version), OwnerName: l.OwnerName,
		Metadata: toStruct(l.Metadata), VisibleFor: l.VisibleFor,
		RemoveAt: tsPtr(l.RemoveAt), CreatedAt: ts(l.CreatedAt),
	}
	for _, d := range l.Definitions {
		out.Definitions = append(out.Definitions, definitionToPB(d))
	}
	return out
}

func definitionToPB(d core.Definition) *pb.LabelDefinition {
	out := &pb.LabelDefinition{Driver: d.Driver, Options: toStruct(d.Options), Authentication: authToPB(d.Authentication)}
	for _, im := range d.Images {
		out.Images = append(out.Images, &pb.Image{Name: im.Name, Url: im.URL, Version: im.Version, Tag: im.Tag, Sum: im.Sum})
	}
	r := d.Resources
	res := &pb.Resources{Cpu: uint32(r.Cpu), Ram: uint32(r.Ram), Network: r.Network, NodeFilter: r.NodeFilter, Lifetime: r.Lifetime}
	if r.Slots != nil {
		v := uint32(*r.Slots)
		res.Slots = &v
	}
	if len(r.Disks) > 0 {
		res.Disks = map[string]*pb.ResourcesDisk{}
		for k, dk := range r.Disks {
			res.Disks[k] = &pb.ResourcesDisk{Type: dk.Type, Label: dk.Label, Size: uint32(dk.Size), Clone: dk.Clone, Reuse: dk.Reuse}
		}
	}
	out.Resources = res
	return out
}

func authToPB(a *core.Authentication) *pb.Authentication {
	if a == nil {
		return nil
	}
	return &pb.Authentication{Username: a.Username, Password: a.Password, Key: a.Key, Port: int32(a.Port)}
}

func authFromPB(a *pb.Authentication) *core.Authentication {
	if a == nil {
		return nil
	}
	return &core.Authentication{Username: a.Username, Password: a.Password, Key: a.Key, Port: int(a.Port)}
}

// labelFromPB converts a request label; errors name the field.
func labelFromPB(l *pb.Label) (*core.Label, error) {
	if l == nil {
		return nil, fmt.Errorf("label: required")
	}
	out := &core.Label{UID: l.Uid, Name: l.Name, Version: int(l.Version), VisibleFor: l.VisibleFor}
	var err error
	if out.Metadata, err = fromStruct(l.Metadata); err != nil {
		return nil, fmt.Errorf("label.metadata: %w", err)
	}
	if l.RemoveAt != nil {
		if err := l.RemoveAt.CheckValid(); err != nil {
			return nil, fmt.Errorf("label.remove_at: %w", err)
		}
		t := l.RemoveAt.AsTime()
		out.RemoveAt = &t
	}
	for i, d := range l.Definitions {
		if d == nil {
			return nil, fmt.Errorf("label.definitions[%d]: required", i)
		}
		cd := core.Definition{Driver: d.Driver, Authentication: authFromPB(d.Authentication)}
		if cd.Options, err = fromStruct(d.Options); err != nil {
			return nil, fmt.Errorf("label.definitions[%d].options: %w", i, err)
		}
		for _, im := range d.Images {
			if im != nil {
				cd.Images = append(cd.Images, core.Image{Name: im.Name, URL: im.Url, Version: im.Version, Tag: im.Tag, Sum: im.Sum})
			}
		}
		if r := d.Resources; r != nil {
			cd.Resources = core.Resources{Cpu: uint(r.Cpu), Ram: uint(r.Ram), Network: r.Network, NodeFilter: r.NodeFilter, Lifetime: r.Lifetime}
			if r.Slots != nil {
				v := uint(*r.Slots)
				cd.Resources.Slots = &v
			}
			if len(r.Disks) > 0 {
				cd.Resources.Disks = map[string]core.Disk{}
				for k, dk := range r.Disks {
					if dk == nil {
						continue
					}
					cd.Resources.Disks[k] = core.Disk{Type: dk.Type, Label: dk.Label, Size: uint(dk.Size), Clone: dk.Clone, Reuse: dk.Reuse}
				}
			}
		}
		out.Definitions = append(out.Definitions, cd)
	}
	return out, nil
}

func applicationToPB(a *core.Application) *pb.Application {
	return &pb.Application{Uid: a.UID, OwnerName: a.OwnerName, LabelUid: a.LabelUID, Metadata: toStruct(a.Metadata), CreatedAt: ts(a.CreatedAt)}
}

func statusToPB(s core.Status) pb.ApplicationState_Status {
	if v, ok := pb.ApplicationState_Status_value[string(s)]; ok {
		return pb.ApplicationState_Status(v)
	}
	return pb.ApplicationState_UNSPECIFIED
}

func stateToPB(s *core.ApplicationState) *pb.ApplicationState {
	return &pb.ApplicationState{Uid: s.UID, ApplicationUid: s.ApplicationUID, Status: statusToPB(s.Status), Description: s.Description, CreatedAt: ts(s.CreatedAt)}
}

func resourceToPB(r *core.Resource) *pb.ApplicationResource {
	return &pb.ApplicationResource{
		Uid: r.UID, ApplicationUid: r.ApplicationUID, NodeName: r.NodeName, LabelUid: r.LabelUID,
		DefinitionIndex: int32(r.DefinitionIndex), Identifier: r.Identifier, IpAddr: r.IPAddr, HwAddr: r.HwAddr,
		Metadata: toStruct(r.Metadata), Timeout: tsPtr(r.Timeout), Authentication: authToPB(r.Authentication),
		CreatedAt: ts(r.CreatedAt),
	}
}

func taskToPB(t *core.Task) *pb.ApplicationTask {
	return &pb.ApplicationTask{
		Uid: t.UID, ApplicationUid: t.ApplicationUID, Task: t.Task, When: statusToPB(t.When),
		Options: toStruct(t.Options), Result: toStruct(t.Result), CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt),
	}
}

func nodeToPB(n *store.Node) *pb.Node {
	return &pb.Node{Name: n.Name, Address: n.Address, Location: n.Location, Maintenance: n.Maintenance, UpdatedAt: ts(n.UpdatedAt)}
}

func userToPB(u *store.User) *pb.User {
	return &pb.User{Name: u.Name, Roles: u.Roles, CreatedAt: ts(u.CreatedAt), UpdatedAt: ts(u.UpdatedAt)}
}
