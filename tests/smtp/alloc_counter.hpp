// tests/smtp/alloc_counter.hpp — counts EVERY heap allocation made by threads that ask for it.
// Definitions, not declarations: include it in exactly ONE file of a test binary of its own (the
// *_alloc_test.cpp files), never in a library — it replaces malloc for the whole process.
//
// malloc, calloc, realloc and aligned_alloc are interposed (Asio allocates coroutine frames and
// operation state with aligned_alloc, not operator new, so counting operator new alone would miss
// what a timer per operation costs; operator new in libstdc++ calls malloc through the PLT, so it
// lands here too). Under AddressSanitizer, which owns malloc, the sanitizer's allocation hook
// counts instead. A thread counts while its t_counting is true; g_allocations is the total.
#pragma once

#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define DANERELAY_ALLOC_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DANERELAY_ALLOC_TEST_ASAN 1
#endif
#endif

namespace {
std::atomic<long> g_allocations{0};
thread_local bool t_counting = false;  // constant-initialised: reading it allocates nothing
inline void count_one() {
  if (t_counting) g_allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#if defined(DANERELAY_ALLOC_TEST_ASAN)
// From the sanitizer runtime (compiler-rt's sanitizer/allocator_interface.h, which GCC does not
// install; libasan exports the function).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void on_malloc(const volatile void*, std::size_t) { count_one(); }
void on_free(const volatile void*) {}
[[maybe_unused]] const int g_hooks_installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}  // namespace
#else
// glibc's own entry points; the executable's definitions below take the place of libc's for the
// whole process (operator new in libstdc++ calls malloc through the PLT, so it lands here too).
extern "C" {
void* __libc_malloc(std::size_t);
void __libc_free(void*);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);

void* malloc(std::size_t n) {
  count_one();
  return __libc_malloc(n);
}
void free(void* p) { __libc_free(p); }
void* calloc(std::size_t a, std::size_t b) {
  count_one();
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  count_one();
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t align, std::size_t n) {
  count_one();
  return __libc_memalign(align, n);
}
void* memalign(std::size_t align, std::size_t n) {
  count_one();
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, std::size_t align, std::size_t n) {
  count_one();
  void* p = __libc_memalign(align, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}
#endif
