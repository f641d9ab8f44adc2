package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
)

func init() {
	var o clientOptions
	cmd := &cobra.Command{Use: "app", Aliases: []string{"application"}, Short: "Manage applications (requests for a machine)"}
	addClientFlags(cmd, &o)

	var labelRef string
	var metaKV []string
	create := &cobra.Command{
		Use:   "create --label NAME[:VERSION] [--meta k=v ...]",
		Short: "Request a machine of a label (latest version unless VERSION is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if labelRef == "" {
				return fmt.Errorf("--label: required (NAME, NAME:VERSION or a label uid)")
			}
			md, err := parseMeta(metaKV)
			if err != nil {
				return err
			}
			c, err := o.connect()
			if err != nil {
				return err
			}
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			uid, err := c.resolveLabel(cmd, labelRef)
			if err != nil {
				return err
			}
			resp, err := c.app.Create(ctx, connect.NewRequest(&pb.ApplicationServiceCreateRequest{Application: &pb.Application{LabelUid: uid, Metadata: md}}))
			if err != nil {
				return apiErr("create application", err)
			}
			return c.printApps(cmd, resp.Msg.Data, []*pb.Application{resp.Msg.Data})
		},
	}
	create.Flags().StringVar(&labelRef, "label", "", "label NAME[:VERSION] or label uid")
	create.Flags().StringArrayVar(&metaKV, "meta", nil, "metadata key=value (repeatable)")

	lst := &cobra.Command{
		Use: "list", Short: "List your applications with their current state", Args: cobra.NoArgs,
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, _ []string, c *clients) error {
			resp, err := c.app.List(ctx, connect.NewRequest(&pb.ApplicationServiceListRequest{}))
			if err != nil {
				return apiErr("list applications", err)
			}
			if c.opts.Output != "table" {
				return c.printApps(cmd, list[*pb.Application](resp.Msg.Data), resp.Msg.Data)
			}
			states, err := c.app.ListState(ctx, connect.NewRequest(&pb.ApplicationServiceListStateRequest{}))
			if err != nil {
				return apiErr("list states", err)
			}
			cur := map[string]string{}
			for _, st := range states.Msg.Data {
				cur[st.ApplicationUid] = st.Status.String()
			}
			rows := make([]row, 0, len(resp.Msg.Data))
			for _, a := range resp.Msg.Data {
				rows = append(rows, row{a.Uid, orDash(cur[a.Uid]), a.LabelUid, orDash(a.OwnerName), fmtTime(a.CreatedAt, a.CreatedAt != nil)})
			}
			return c.print(cmd.OutOrStdout(), nil, row{"UID", "STATE", "LABEL", "OWNER", "CREATED"}, rows)
		}),
	}
	get := &cobra.Command{
		Use: "get APP_UID", Short: "Show an application and its current state", Args: cobra.ExactArgs(1),
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, args []string, c *clients) error {
			resp, err := c.app.Get(ctx, connect.NewRequest(&pb.ApplicationServiceGetRequest{ApplicationUid: args[0]}))
			if err != nil {
				return apiErr("get application", err)
			}
			return c.printApps(cmd, resp.Msg.Data, []*pb.Application{resp.Msg.Data})
		}),
	}
	state := &cobra.Command{
		Use: "state APP_UID", Short: "Show the current state of an application", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.connect()
			if err != nil {
				return err
			}
			st, err := c.getState(cmd, args[0])
			if err != nil {
				return err
			}
			return c.printState(cmd, st)
		},
	}
	var want string
	var waitFor time.Duration
	wait := &cobra.Command{
		Use:   "wait APP_UID --state ALLOCATED",
		Short: "Wait until an application reaches a state (fails early on ERROR or DEALLOCATED)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			want = strings.ToUpper(want)
			if _, ok := pb.ApplicationState_Status_value[want]; !ok || want == "UNSPECIFIED" {
				return fmt.Errorf("--state: unknown state %q (NEW, ELECTED, ALLOCATED, DEALLOCATE, DEALLOCATED, ERROR)", want)
			}
			c, err := o.connect()
			if err != nil {
				return err
			}
			deadline := time.Now().Add(waitFor)
			for {
				st, err := c.getState(cmd, args[0])
				if err != nil {
					return err
				}
				cur := st.Status.String()
				if cur == want {
					return c.printState(cmd, st)
				}
				if (cur == "ERROR" || cur == "DEALLOCATED") && want != "DEALLOCATE" {
					_ = c.printState(cmd, st)
					return fmt.Errorf("application %s is %s, it will never be %s", args[0], cur, want)
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("application %s still %s after %s (waiting for %s)", args[0], cur, waitFor, want)
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(250 * time.Millisecond):
				}
			}
		},
	}
	wait.Flags().StringVar(&want, "state", "ALLOCATED", "state to wait for")
	wait.Flags().DurationVar(&waitFor, "wait-timeout", 30*time.Minute, "give up after this long")

	resource := &cobra.Command{
		Use: "resource APP_UID", Short: "Show the allocated resource (address, credentials)", Args: cobra.ExactArgs(1),
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, args []string, c *clients) error {
			resp, err := c.app.GetResource(ctx, connect.NewRequest(&pb.ApplicationServiceGetResourceRequest{ApplicationUid: args[0]}))
			if err != nil {
				return apiErr("get resource", err)
			}
			r := resp.Msg.Data
			user := "-"
			if r.Authentication != nil && r.Authentication.Username != "" {
				user = r.Authentication.Username
			}
			return c.print(cmd.OutOrStdout(), r, row{"APPLICATION", "IDENTIFIER", "IP", "MAC", "NODE", "USER", "TIMEOUT"},
				[]row{{r.ApplicationUid, r.Identifier, orDash(r.IpAddr), orDash(r.HwAddr), orDash(r.NodeName), user, fmtTime(r.Timeout, r.Timeout != nil)}})
		}),
	}
	dealloc := &cobra.Command{
		Use: "deallocate APP_UID", Short: "Give the machine back", Args: cobra.ExactArgs(1),
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, args []string, c *clients) error {
			resp, err := c.app.Deallocate(ctx, connect.NewRequest(&pb.ApplicationServiceDeallocateRequest{ApplicationUid: args[0]}))
			if err != nil {
				return apiErr("deallocate", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.Msg.Message)
			return nil
		}),
	}
	cmd.AddCommand(create, lst, get, state, wait, resource, dealloc)
	rootCmd.AddCommand(cmd)
}

// parseMeta turns k=v pairs into a metadata object; values that parse as
// numbers or booleans keep their type.
func parseMeta(kvs []string) (*structpb.Struct, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--meta %q: must be key=value", kv)
		}
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			m[k] = n
		} else if b, err := strconv.ParseBool(v); err == nil {
			m[k] = b
		} else {
			m[k] = v
		}
	}
	st, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("--meta: %w", err)
	}
	return st, nil
}

// resolveLabel finds the uid of NAME[:VERSION] (latest version by default).
func (c *clients) resolveLabel(cmd *cobra.Command, ref string) (string, error) {
	name, ver, hasVer := strings.Cut(ref, ":")
	req := &pb.LabelServiceListRequest{Name: &name, Version: versionValue("last")}
	if hasVer {
		req.Version = versionValue(ver)
	}
	ctx, cancel := c.ctx(cmd)
	defer cancel()
	resp, err := c.label.List(ctx, connect.NewRequest(req))
	if err != nil {
		return "", apiErr("find label "+ref, err)
	}
	if len(resp.Msg.Data) == 0 {
		// Maybe it is a uid.
		g, gerr := c.label.Get(ctx, connect.NewRequest(&pb.LabelServiceGetRequest{LabelUid: ref}))
		if gerr == nil {
			return g.Msg.Data.Uid, nil
		}
		return "", fmt.Errorf("--label %s: no such label visible to you", ref)
	}
	best := resp.Msg.Data[0]
	for _, l := range resp.Msg.Data[1:] {
		if l.Version > best.Version {
			best = l
		}
	}
	return best.Uid, nil
}

func (c *clients) getState(cmd *cobra.Command, uid string) (*pb.ApplicationState, error) {
	ctx, cancel := c.ctx(cmd)
	defer cancel()
	resp, err := c.app.GetState(ctx, connect.NewRequest(&pb.ApplicationServiceGetStateRequest{ApplicationUid: uid}))
	if err != nil {
		return nil, apiErr("get state", err)
	}
	return resp.Msg.Data, nil
}

func (c *clients) printState(cmd *cobra.Command, st *pb.ApplicationState) error {
	return c.print(cmd.OutOrStdout(), st, row{"APPLICATION", "STATE", "SINCE", "DESCRIPTION"},
		[]row{{st.ApplicationUid, st.Status.String(), fmtTime(st.CreatedAt, st.CreatedAt != nil), orDash(st.Description)}})
}

func (c *clients) printApps(cmd *cobra.Command, data any, apps []*pb.Application) error {
	rows := make([]row, 0, len(apps))
	for _, a := range apps {
		rows = append(rows, row{a.Uid, a.LabelUid, orDash(a.OwnerName), fmtTime(a.CreatedAt, a.CreatedAt != nil)})
	}
	return c.print(cmd.OutOrStdout(), data, row{"UID", "LABEL", "OWNER", "CREATED"}, rows)
}
