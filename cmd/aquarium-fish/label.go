package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/aquarium-fish/aquarium-fish/internal/api"
	pb "github.com/aquarium-fish/aquarium-fish/internal/api/gen/aquarium/v2"
)

func init() {
	var o clientOptions
	cmd := &cobra.Command{Use: "label", Short: "Manage labels (what a machine looks like)"}
	addClientFlags(cmd, &o)

	var file string
	create := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create a label from a YAML or JSON file (the label itself, or {label: ...})",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f/--file: required")
			}
			l, err := readLabelFile(file)
			if err != nil {
				return err
			}
			c, err := o.connect()
			if err != nil {
				return err
			}
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			resp, err := c.label.Create(ctx, connect.NewRequest(&pb.LabelServiceCreateRequest{Label: l}))
			if err != nil {
				return apiErr("create label", err)
			}
			return c.printLabels(cmd, resp.Msg.Data, []*pb.Label{resp.Msg.Data})
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "label file (.yaml, .yml or .json)")

	var name, version string
	lst := &cobra.Command{
		Use:   "list",
		Short: "List the labels you can see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.connect()
			if err != nil {
				return err
			}
			req := &pb.LabelServiceListRequest{}
			if name != "" {
				req.Name = &name
			}
			if version != "" {
				req.Version = versionValue(version)
			}
			ctx, cancel := c.ctx(cmd)
			defer cancel()
			resp, err := c.label.List(ctx, connect.NewRequest(req))
			if err != nil {
				return apiErr("list labels", err)
			}
			return c.printLabels(cmd, list[*pb.Label](resp.Msg.Data), resp.Msg.Data)
		},
	}
	lst.Flags().StringVar(&name, "name", "", "only labels with this name")
	lst.Flags().StringVar(&version, "version", "", `only this version (a number or "last")`)

	get := &cobra.Command{
		Use: "get LABEL_UID", Short: "Show a label", Args: cobra.ExactArgs(1),
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, args []string, c *clients) error {
			resp, err := c.label.Get(ctx, connect.NewRequest(&pb.LabelServiceGetRequest{LabelUid: args[0]}))
			if err != nil {
				return apiErr("get label", err)
			}
			return c.printLabels(cmd, resp.Msg.Data, []*pb.Label{resp.Msg.Data})
		}),
	}
	remove := &cobra.Command{
		Use: "remove LABEL_UID", Short: "Remove a label", Args: cobra.ExactArgs(1),
		RunE: o.run(func(ctx context.Context, cmd *cobra.Command, args []string, c *clients) error {
			resp, err := c.label.Remove(ctx, connect.NewRequest(&pb.LabelServiceRemoveRequest{LabelUid: args[0]}))
			if err != nil {
				return apiErr("remove label", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.Msg.Message)
			return nil
		}),
	}
	cmd.AddCommand(create, lst, get, remove)
	rootCmd.AddCommand(cmd)
}

func versionValue(v string) *structpb.Value {
	if n, err := strconv.Atoi(v); err == nil {
		return structpb.NewNumberValue(float64(n))
	}
	return structpb.NewStringValue(v)
}

// readLabelFile reads a label in YAML or JSON; both the bare label and the
// request form {label: {...}} are accepted. Errors name the field.
func readLabelFile(path string) (*pb.Label, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-f: %w", err)
	}
	js, err := api.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, fmt.Errorf("%s: must be an object: %w", path, err)
	}
	req := &pb.LabelServiceCreateRequest{}
	if _, wrapped := top["label"]; !wrapped {
		js = append(append([]byte(`{"label":`), js...), '}')
	}
	if err := protojson.Unmarshal(js, req); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return req.Label, nil
}

func (c *clients) printLabels(cmd *cobra.Command, data any, labels []*pb.Label) error {
	rows := make([]row, 0, len(labels))
	for _, l := range labels {
		drivers := make([]string, 0, len(l.Definitions))
		for _, d := range l.Definitions {
			drivers = append(drivers, d.Driver)
		}
		rows = append(rows, row{l.Uid, l.Name, strconv.Itoa(int(l.Version)), orDash(l.OwnerName), strings.Join(drivers, ","), fmtTime(l.CreatedAt, l.CreatedAt != nil)})
	}
	return c.print(cmd.OutOrStdout(), data, row{"UID", "NAME", "VERSION", "OWNER", "DRIVERS", "CREATED"}, rows)
}
