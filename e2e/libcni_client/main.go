// libcni-client drives a conflist through a pinned release of libcni exactly as a container
// runtime's CNI library does: the e2e tests build it against the libcni of containerd 1.6
// (github.com/containernetworking/cni v1.1.2, see go.mod), which ignores "cniVersions", to show that
// weir-agent's conflist works there.
//
//	libcni-client -cache DIR -netns PATH -id CONTAINER [-ifname eth0] [-cap-args JSON] add|check|del CONFLIST
//
// Plugins are looked up in $CNI_PATH. ADD prints the chain's result; errors go to stderr with exit 1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	cacheDir := flag.String("cache", "", "libcni's result cache (never the machine's /var/lib/cni)")
	netns := flag.String("netns", "", "the pod's network namespace path")
	containerID := flag.String("id", "", "container id")
	ifname := flag.String("ifname", "eth0", "interface name in the pod")
	capArgs := flag.String("cap-args", "", "capability arguments as JSON, e.g. {\"portMappings\": [...]}")
	flag.Parse()
	if flag.NArg() != 2 || *cacheDir == "" || *containerID == "" {
		fmt.Fprintln(os.Stderr, "usage: libcni-client -cache DIR -netns PATH -id CONTAINER [-ifname eth0] [-cap-args JSON] add|check|del CONFLIST")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *cacheDir, *netns, *containerID, *ifname, *capArgs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(command, conflist, cacheDir, netns, containerID, ifname, capArgs string) error {
	list, err := libcni.ConfListFromFile(conflist)
	if err != nil {
		return err
	}
	runtime := &libcni.RuntimeConf{ContainerID: containerID, NetNS: netns, IfName: ifname}
	if capArgs != "" {
		if err := json.Unmarshal([]byte(capArgs), &runtime.CapabilityArgs); err != nil {
			return fmt.Errorf("-cap-args: %w", err)
		}
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), cacheDir, nil)
	ctx := context.Background()
	switch command {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, runtime)
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(result)
	case "check":
		return cni.CheckNetworkList(ctx, list, runtime)
	case "del":
		return cni.DelNetworkList(ctx, list, runtime)
	}
	return fmt.Errorf("unknown command %q: add, check or del", command)
}
