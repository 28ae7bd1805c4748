// The tool's bridge commands (bridge_cli.cc): a ring carried through NATS JetStream.
#ifndef XDISRUPTOR_TOOLS_BRIDGE_CLI_H_
#define XDISRUPTOR_TOOLS_BRIDGE_CLI_H_

#include <string>

namespace xdisruptor::tool {

// xdisruptor bridge out RING --nats URL[,URL...] --stream NAME [--subject S] [--name bridge]
//     [--max_batch N] [--max_delay_us N] [--replicas N]
int BridgeOut(const std::string& ring);
// xdisruptor bridge in RING --nats URL[,URL...] --stream NAME [--create [--capacity N]]
//     [--name bridge-in]
int BridgeIn(const std::string& ring);

}  // namespace xdisruptor::tool

#endif  // XDISRUPTOR_TOOLS_BRIDGE_CLI_H_
