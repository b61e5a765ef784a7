/* FMA throughput of one core, measured: how many float32 fused multiply-adds per cycle it retires with
   256-bit (ymm) and, where the compiler targets AVX-512, 512-bit (zmm) vectors. bench_conv.py assumes
   16 float32 lanes per core per cycle (--fma-lanes); this checks that number on the machine at hand.

   Build and run (one core; no Python):
       cc -O3 -march=native bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak

   The clock comes from a chain of dependent scalar FMAs (4 cycles each, as in bench_conv.py). Enough
   independent accumulators (12 ymm, 24 zmm) cover the latency on two FMA pipes. The inner loops are unrolled
   so that the accumulators stay in registers: without the pragma, gcc kept the 24 zmm ones in memory and the
   zmm line timed a load and a store per FMA (9.9 lanes per cycle on an AMD EPYC Zen 4 that does 16). */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void) {
    const long n = 200000000;
    double a = 1.0, t = now();
    for (long k = 0; k < n; k++) {
        a = __builtin_fma(a, 0.999999999, 1e-9);
        __asm__("" : "+x"(a));
    }
    double clock = 4.0 * n / (now() - t);
    printf("clock %.3g GHz (dependent scalar FMA chain, 4 cycles each; %g)\n", clock / 1e9, a);

    __m256 y[12], ym = _mm256_set1_ps(0.9999999f), yb = _mm256_set1_ps(1e-8f);
    for (int i = 0; i < 12; i++) y[i] = _mm256_set1_ps((float)i);
    t = now();
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) y[i] = _mm256_fmadd_ps(y[i], ym, yb);
    double rate = 12.0 * 8 * n / (now() - t);
    float s = 0;
    for (int i = 0; i < 12; i++) s += y[i][0];
    printf("ymm: %.3g float32 FMA lanes/s = %.1f per cycle (%g)\n", rate, rate / clock, s);

#ifdef __AVX512F__
    __m512 z[24], zm = _mm512_set1_ps(0.9999999f), zb = _mm512_set1_ps(1e-8f);
    for (int i = 0; i < 24; i++) z[i] = _mm512_set1_ps((float)i);
    t = now();
    for (long k = 0; k < n / 2; k++)
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) z[i] = _mm512_fmadd_ps(z[i], zm, zb);
    rate = 24.0 * 16 * (n / 2) / (now() - t);
    s = 0;
    for (int i = 0; i < 24; i++) s += z[i][0];
    printf("zmm: %.3g float32 FMA lanes/s = %.1f per cycle at the scalar clock (%g)\n", rate, rate / clock, s);
#else
    printf("zmm: not compiled (no AVX-512 target)\n");
#endif
    return 0;
}
