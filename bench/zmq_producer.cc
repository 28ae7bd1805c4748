// zmq_producer — the C++ side of the ZeroMQ rows of bench/python_peers.py: connects a PUSH
// socket to ENDPOINT and sends COUNT 64-byte events, one message each, in the layout of the
// Python benchmark's events (w[0] = sequence, w[1..6] = sequence * 31 + j, w[7] = seq ^ tag).
//
//   xdisruptor_bench_zmq_producer ipc:///tmp/x 1000000
#include <zmq.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ENDPOINT COUNT\n", argv[0]);
    return 2;
  }
  const long long count = std::atoll(argv[2]);
  void* context = zmq_ctx_new();
  void* socket = zmq_socket(context, ZMQ_PUSH);
  const int hwm = 65536;
  zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof(hwm));
  if (zmq_connect(socket, argv[1]) != 0) {
    std::fprintf(stderr, "zmq_connect %s: %s\n", argv[1], zmq_strerror(errno));
    return 1;
  }
  std::uint64_t e[8];
  for (long long s = 0; s < count; ++s) {
    const auto u = static_cast<std::uint64_t>(s);
    e[0] = u;
    for (int j = 1; j < 7; ++j) e[j] = u * 31 + static_cast<std::uint64_t>(j);
    e[7] = u ^ 0x9E3779B97F4A7C15ull;
    while (zmq_send(socket, e, sizeof(e), 0) < 0 && errno == EINTR) {
    }
  }
  const int linger = -1;  // deliver everything before closing
  zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof(linger));
  zmq_close(socket);
  zmq_ctx_term(context);
  return 0;
}
