// Command coredns is CoreDNS with only the plugins the real test node needs,
// built from the published github.com/coredns/coredns module (see go.mod).
//
// A full CoreDNS build links every plugin, including cloud DNS providers
// (route53, azure, clouddns) whose SDKs dominate the build time and module
// downloads; the real node resolves cluster names only, so it needs just
// these. The Directives list keeps CoreDNS's own plugin order (from its
// core/dnsserver/zdirectives.go), which decides how plugins chain.
// Built by e2e/control-plane.sh (up DIR --real-node); see e2e/README.md.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The subset of CoreDNS's directive order for the plugins imported above.
var directives = []string{
	"bind",
	"ready",
	"health",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"kubernetes",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
