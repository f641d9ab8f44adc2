package api

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

type labelService struct{ s *Server }

// visible: owner, admin, empty visible_for, or visible_for naming the user or one of its roles.
func (c *caller) canSeeLabel(l *core.Label) bool {
	if c.admin || l.OwnerName == c.name || len(l.VisibleFor) == 0 {
		return true
	}
	for _, v := range l.VisibleFor {
		if v == c.name || slices.Contains(c.roles, v) {
			return true
		}
	}
	return false
}

func (c *caller) canChangeLabel(l *core.Label) bool { return c.admin || l.OwnerName == c.name }

// parseVersion reads the List version filter: a number, a numeric string or "last".
func parseVersion(v *structpb.Value) (version int, latest bool, err error) {
	if v == nil {
		return 0, false, nil
	}
	switch k := v.Kind.(type) {
	case *structpb.Value_NullValue:
		return 0, false, nil
	case *structpb.Value_NumberValue:
		if k.NumberValue < 0 || k.NumberValue != float64(int(k.NumberValue)) {
			return 0, false, fmt.Errorf("version: must be a non-negative integer or \"last\"")
		}
		return int(k.NumberValue), false, nil
	case *structpb.Value_StringValue:
		if k.StringValue == "last" {
			return 0, true, nil
		}
		n, err := strconv.Atoi(k.StringValue)
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("version: must be a non-negative integer or \"last\", got %q", k.StringValue)
		}
		return n, false, nil
	default:
		return 0, false, fmt.Errorf("version: must be a non-negative integer or \"last\"")
	}
}

func (h *labelService) List(ctx context.Context, req *connect.Request[pb.LabelServiceListRequest]) (*connect.Response[pb.LabelServiceListResponse], error) {
	c := callerFrom(ctx)
	f := store.LabelFilter{Name: req.Msg.GetName()}
	var err error
	if f.Version, f.Latest, err = parseVersion(req.Msg.GetVersion()); err != nil {
		return nil, invalid("%w", err)
	}
	labels, err := h.s.opts.Store.ListLabels(ctx, f)
	if err != nil {
		return nil, h.s.storeError(err, "labels")
	}
	out := &pb.LabelServiceListResponse{Status: true, Data: []*pb.Label{}}
	for i := range labels {
		if c.canSeeLabel(&labels[i]) {
			out.Data = append(out.Data, labelToPB(&labels[i]))
		}
	}
	out.Message = fmt.Sprintf("%d label(s)", len(out.Data))
	return connect.NewResponse(out), nil
}

func (h *labelService) get(ctx context.Context, uid string) (*core.Label, error) {
	if uid == "" {
		return nil, invalid("label_uid: required")
	}
	l, err := h.s.opts.Store.GetLabel(ctx, uid)
	if err != nil {
		return nil, h.s.storeError(err, "label "+uid)
	}
	if !callerFrom(ctx).canSeeLabel(l) {
		return nil, notFound("label %s not found", uid)
	}
	return l, nil
}

func (h *labelService) Get(ctx context.Context, req *connect.Request[pb.LabelServiceGetRequest]) (*connect.Response[pb.LabelServiceGetResponse], error) {
	l, err := h.get(ctx, req.Msg.GetLabelUid())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&pb.LabelServiceGetResponse{Status: true, Message: "label found", Data: labelToPB(l)}), nil
}

func checkLabel(l *core.Label) error {
	if l.Name == "" {
		return invalid("label.name: required")
	}
	if l.Version < 0 {
		return invalid("label.version: must be >= 0")
	}
	if len(l.Definitions) == 0 {
		return invalid("label.definitions: at least one definition is required")
	}
	for i, d := range l.Definitions {
		if d.Driver == "" {
			return invalid("label.definitions[%d].driver: required", i)
		}
	}
	if l.RemoveAt != nil && l.Version != 0 {
		return invalid("label.remove_at: only allowed for version 0 labels")
	}
	return nil
}

func (h *labelService) Create(ctx context.Context, req *connect.Request[pb.LabelServiceCreateRequest]) (*connect.Response[pb.LabelServiceCreateResponse], error) {
	l, err := labelFromPB(req.Msg.GetLabel())
	if err != nil {
		return nil, invalid("%w", err)
	}
	if err := checkLabel(l); err != nil {
		return nil, err
	}
	l.UID = uuid.NewString()
	l.OwnerName = callerFrom(ctx).name
	l.CreatedAt = h.s.opts.Clock.Now().UTC()
	if err := h.s.opts.Engine.CreateLabel(ctx, l); err != nil {
		return nil, h.s.engineError(err, fmt.Sprintf("label %s:%d", l.Name, l.Version))
	}
	h.s.log.Info("label created", "uid", l.UID, "name", l.Name, "version", l.Version, "owner", l.OwnerName)
	return connect.NewResponse(&pb.LabelServiceCreateResponse{Status: true, Message: "label created", Data: labelToPB(l)}), nil
}

// labelUpdater is implemented by engines that validate label updates.
type labelUpdater interface {
	UpdateLabel(ctx context.Context, l *core.Label) error
}

func (h *labelService) Update(ctx context.Context, req *connect.Request[pb.LabelServiceUpdateRequest]) (*connect.Response[pb.LabelServiceUpdateResponse], error) {
	l, err := labelFromPB(req.Msg.GetLabel())
	if err != nil {
		return nil, invalid("%w", err)
	}
	if l.UID == "" {
		return nil, invalid("label.uid: required")
	}
	cur, err := h.get(ctx, l.UID)
	if err != nil {
		return nil, err
	}
	if !callerFrom(ctx).canChangeLabel(cur) {
		return nil, denied("label %s belongs to another user", cur.UID)
	}
	if cur.Version != 0 {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("label.version: label %s is version %d; only version 0 labels can be updated", cur.UID, cur.Version))
	}
	if l.Version != 0 {
		return nil, invalid("label.version: an update keeps version 0")
	}
	if err := checkLabel(l); err != nil {
		return nil, err
	}
	l.OwnerName, l.CreatedAt = cur.OwnerName, cur.CreatedAt
	if u, ok := h.s.opts.Engine.(labelUpdater); ok {
		err = u.UpdateLabel(ctx, l)
		if err != nil {
			return nil, h.s.engineError(err, "label "+l.UID)
		}
	} else if err = h.s.opts.Store.UpdateLabel(ctx, l); err != nil {
		return nil, h.s.storeError(err, "label "+l.UID)
	}
	return connect.NewResponse(&pb.LabelServiceUpdateResponse{Status: true, Message: "label updated", Data: labelToPB(l)}), nil
}

func (h *labelService) Remove(ctx context.Context, req *connect.Request[pb.LabelServiceRemoveRequest]) (*connect.Response[pb.LabelServiceRemoveResponse], error) {
	l, err := h.get(ctx, req.Msg.GetLabelUid())
	if err != nil {
		return nil, err
	}
	if !callerFrom(ctx).canChangeLabel(l) {
		return nil, denied("label %s belongs to another user", l.UID)
	}
	if err := h.s.opts.Engine.RemoveLabel(ctx, l.UID); err != nil {
		return nil, h.s.engineError(err, "label "+l.UID)
	}
	return connect.NewResponse(&pb.LabelServiceRemoveResponse{Status: true, Message: "label removed"}), nil
}
