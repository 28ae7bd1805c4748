// xdisruptor/waitstrategies/busy_spin.h — busy-spin: re-check at once, with the CPU's pause.
//
// Lowest latency, one full core per waiter. Only for a waiter that owns a core: with more
// busy-spinning processes than cores, spinners steal time from the very thread they wait for.
#ifndef XDISRUPTOR_WAITSTRATEGIES_BUSY_SPIN_H_
#define XDISRUPTOR_WAITSTRATEGIES_BUSY_SPIN_H_

namespace xdisruptor::wait {

// Tells the core this is a spin loop: saves power, frees the sibling hyper-thread, and avoids
// the memory-order mis-speculation penalty when the awaited store lands.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  asm volatile("" ::: "memory");
#endif
}

struct BusySpin {
  static void Idle() { CpuRelax(); }
};

}  // namespace xdisruptor::wait

#endif  // XDISRUPTOR_WAITSTRATEGIES_BUSY_SPIN_H_
