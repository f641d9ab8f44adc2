// Command aquarium-fish is the Aquarium Fish resource-manager node, its AWS
// emulator, its simulator and its API client, in one binary.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// rootCmd is the CLI root. Each subcommand registers itself from its own
// file with rootCmd.AddCommand in an init function.
var rootCmd = &cobra.Command{
	Use:           "aquarium-fish",
	Short:         "Aquarium Fish: lend CI machines from the cloud",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version)
		},
	})
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		slog.Error("aquarium-fish failed", "err", err)
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
