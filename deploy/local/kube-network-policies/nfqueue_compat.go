// Added to sigs.k8s.io/kube-network-policies/pkg/networkpolicy at build time
// (scripts/lib/image_recipes.py, GO_IMAGES["kube-network-policies"]: a patched
// copy of the module behind a `replace`); not part of upstream.
//
// Upstream sends a connection's first packet to its userspace verdict with
// nftables' native `queue` expression, which needs the kernel's nft_queue
// (CONFIG_NFT_QUEUE). Kernels built without it (this project's test machines)
// refuse the whole rule set with ENOENT, so no policy is ever enforced. The
// same verdict path is reachable through nft_compat and xtables' NFQUEUE
// target (CONFIG_NFT_COMPAT, CONFIG_NETFILTER_XT_TARGET_NFQUEUE), which is how
// iptables-nft writes `-j NFQUEUE`: same queue number, same bypass flag, the
// packets reach the same nfnetlink_queue socket.

package networkpolicy

import (
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// nfqueueTarget is `-j NFQUEUE --queue-num num [--queue-bypass]` as an
// nftables compat target: revision 3 of xt_NFQUEUE, whose info is
// struct xt_NFQ_info_v3 { u16 queuenum; u16 queues_total; u16 flags; },
// padded to 8 bytes (XT_ALIGN), in the host's byte order.
func nfqueueTarget(num uint16, bypass bool) *expr.Target {
	const flagBypass = 0x01 // NFQ_FLAG_BYPASS
	var flags uint16
	if bypass {
		flags = flagBypass
	}
	info := make([]byte, 8)
	copy(info[0:2], binaryutil.NativeEndian.PutUint16(num))
	copy(info[2:4], binaryutil.NativeEndian.PutUint16(1)) // one queue, no fan-out
	copy(info[4:6], binaryutil.NativeEndian.PutUint16(flags))
	unknown := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &unknown}
}
