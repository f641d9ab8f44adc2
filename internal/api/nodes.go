package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
	"github.com/aquarium-fish/aquarium-fish/internal/core"
	"github.com/aquarium-fish/aquarium-fish/internal/store"
)

type nodeService struct{ s *Server }

func (h *nodeService) List(ctx context.Context, _ *connect.Request[pb.NodeServiceListRequest]) (*connect.Response[pb.NodeServiceListResponse], error) {
	nodes, err := h.s.opts.Store.ListNodes(ctx)
	if err != nil {
		return nil, h.s.storeError(err, "nodes")
	}
	out := &pb.NodeServiceListResponse{Status: true, Message: fmt.Sprintf("%d node(s)", len(nodes)), Data: make([]*pb.Node, 0, len(nodes))}
	for i := range nodes {
		out.Data = append(out.Data, nodeToPB(&nodes[i]))
	}
	return connect.NewResponse(out), nil
}

func (h *nodeService) Get(ctx context.Context, req *connect.Request[pb.NodeServiceGetRequest]) (*connect.Response[pb.NodeServiceGetResponse], error) {
	name := req.Msg.GetNodeName()
	if name == "" {
		return nil, invalid("node_name: required")
	}
	n, err := h.s.opts.Store.GetNode(ctx, name)
	if err != nil {
		return nil, h.s.storeError(err, "node "+name)
	}
	return connect.NewResponse(&pb.NodeServiceGetResponse{Status: true, Message: "node found", Data: nodeToPB(n)}), nil
}

func (h *nodeService) this(ctx context.Context) (*store.Node, error) {
	n, err := h.s.opts.Store.GetNode(ctx, h.s.opts.NodeName)
	if errors.Is(err, store.ErrNotFound) {
		return &store.Node{Name: h.s.opts.NodeName}, nil
	}
	if err != nil {
		return nil, h.s.storeError(err, "node "+h.s.opts.NodeName)
	}
	return n, nil
}

func (h *nodeService) GetThis(ctx context.Context, _ *connect.Request[pb.NodeServiceGetThisRequest]) (*connect.Response[pb.NodeServiceGetThisResponse], error) {
	n, err := h.this(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&pb.NodeServiceGetThisResponse{Status: true, Message: "this node", Data: nodeToPB(n)}), nil
}

func (h *nodeService) SetMaintenance(ctx context.Context, req *connect.Request[pb.NodeServiceSetMaintenanceRequest]) (*connect.Response[pb.NodeServiceSetMaintenanceResponse], error) {
	m := req.Msg
	if m.Maintenance == nil && m.Shutdown == nil {
		return nil, invalid("maintenance or shutdown: at least one is required")
	}
	var msgs []string
	if m.Maintenance != nil {
		h.s.opts.Engine.SetMaintenance(m.GetMaintenance())
		n, err := h.this(ctx)
		if err != nil {
			return nil, err
		}
		n.Maintenance = m.GetMaintenance()
		n.UpdatedAt = h.s.opts.Clock.Now().UTC()
		if err := h.s.opts.Store.UpsertNode(ctx, n); err != nil {
			return nil, h.s.storeError(err, "node "+n.Name)
		}
		msgs = append(msgs, fmt.Sprintf("maintenance=%v", m.GetMaintenance()))
		h.s.log.Info("node maintenance changed", "node", n.Name, "maintenance", n.Maintenance, "by", callerFrom(ctx).name)
	}
	if m.GetShutdown() {
		delay, err := core.ParseDuration(m.GetShutdownDelay())
		if m.GetShutdownDelay() == "" {
			delay, err = 0, nil
		}
		if err != nil || delay < 0 {
			return nil, invalid("shutdown_delay: must be a non-negative duration like 10m, got %q", m.GetShutdownDelay())
		}
		if h.s.opts.Shutdown == nil {
			return nil, connect.NewError(connect.CodeUnimplemented, errors.New("shutdown: not supported by this node"))
		}
		h.s.opts.Shutdown(delay)
		msgs = append(msgs, fmt.Sprintf("shutdown in %s", delay))
		h.s.log.Warn("node shutdown requested", "delay", delay.String(), "by", callerFrom(ctx).name)
	}
	return connect.NewResponse(&pb.NodeServiceSetMaintenanceResponse{Status: true, Message: strings.Join(msgs, ", ")}), nil
}
