// Command etcd is the etcd server built from the published go.etcd.io/etcd/server/v3
// module. Upstream's own `etcd` main package lives in the root module, whose go.mod
// replaces its siblings with relative paths, so it cannot be `go install`ed from the
// module proxy; this wrapper calls the same entry point instead.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
