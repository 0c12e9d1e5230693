/*
 * blackscholes — PARSEC 3.0-style Black-Scholes option pricing (our own
 * implementation from the algorithm description; no PARSEC code).
 *
 * Algorithm
 *   A portfolio of NOPT European options (spot S, strike K, riskless rate r,
 *   volatility v, time to expiry T, call or put) is generated from a
 *   per-option splitmix64 stream, so option i is the same whoever makes it.
 *   Each option is priced with the closed form
 *       d1 = (ln(S/K) + (r + v^2/2) T) / (v sqrt T),  d2 = d1 - v sqrt T
 *       call = S N(d1) - K e^{-rT} N(d2),  put = K e^{-rT} N(-d2) - S N(-d1)
 *   where the cumulative normal N is the Abramowitz-Stegun 26.2.17
 *   fifth-order polynomial in t = 1/(1 + 0.2316419 |x|) times the normal
 *   density (error < 7.5e-8).  The whole portfolio is priced NRUNS times
 *   (the benchmark's repetition loop); every pass stores the same prices.
 *
 * Parallel structure
 *   Data-parallel: hart h owns a static contiguous slice of the portfolio
 *   (the last hart takes the remainder); it generates its options, makes
 *   NRUNS pricing passes over the slice, then verifies the slice:
 *     - put-call parity: C - P = S - K e^{-rT} (the other type priced too),
 *     - bounds: max(0, S - Ke^{-rT}) <= C <= S, max(0, Ke^{-rT} - S) <= P,
 *     - agreement with an erfc-based reference price (libm) to 1e-6.
 *   Error counts go to padded per-hart slots.  After one barrier hart 0
 *   hashes the price array in index order and sums the error counts.
 *
 * Sharing pattern
 *   Coarse, almost none: each hart reads and writes only its own slice of
 *   the input and price arrays; slice boundaries can share a cache line.
 *   One barrier; hart 0 then reads every price.
 *
 * Sizes (instructions at 1 hart)
 *   SIZE_TEST   16384 options x 6 passes    (~64M instructions)
 *   SIZE_BENCH  65536 options x 80 passes   (~2.4G instructions)
 *
 * Output
 *   blackscholes: options=N runs=R sum=<sum of prices, fixed order>
 *                 checksum=<FNV-style hash of the price bit patterns> PASS
 *   identical for every hart count; exit 0, or 1 if any check failed.
 */
#include "runtime.h"
#include <math.h>
#include <string.h>

#if defined(SIZE_BENCH)
#define NOPT  65536u
#define NRUNS 80u
#elif defined(SIZE_TEST)
#define NOPT  16384u
#define NRUNS 6u
#else
#error "build with -DSIZE_TEST or -DSIZE_BENCH"
#endif

#define SEED 0x5eed0b1acc5c401eull

/* Input in structure-of-arrays form, like the benchmark's pricing loop. */
static NOINIT double spot[NOPT];
static NOINIT double strike[NOPT];
static NOINIT double rate[NOPT];
static NOINIT double vol[NOPT];
static NOINIT double otime[NOPT];
static NOINIT uint8_t otype[NOPT];          /* 0 = call, 1 = put */
static NOINIT double prices[NOPT];

static struct { uint32_t errors; } CACHE_ALIGNED check[RT_MAX_HARTS];
static barrier_t bar;

static double unif(uint64_t *s) { return (double)(splitmix64(s) >> 11) * 0x1.0p-53; }

/* Option i from its own stream: independent of who generates it. */
static void gen_option(size_t i)
{
    uint64_t s = SEED ^ (0x9E3779B97F4A7C15ull * (i + 1));
    double S = 20.0 + 130.0 * unif(&s);                 /* spot 20..150 */
    spot[i] = S;
    strike[i] = S * (0.7 + 0.6 * unif(&s));            /* moneyness 0.7..1.3 */
    rate[i] = 0.01 + 0.09 * unif(&s);                  /* 1%..10% */
    vol[i] = 0.05 + 0.60 * unif(&s);                   /* 5%..65% */
    otime[i] = 0.1 + 2.9 * unif(&s);                   /* 0.1..3 years */
    otype[i] = (uint8_t)(splitmix64(&s) & 1);
}

#define INV_SQRT_2PI 0.39894228040143267794

/* Abramowitz & Stegun 26.2.17. */
static double cndf(double x)
{
    int neg = x < 0.0;
    double ax = neg ? -x : x;
    double t = 1.0 / (1.0 + 0.2316419 * ax);
    double poly = t * (0.319381530 + t * (-0.356563782 + t * (1.781477937
                + t * (-1.821255978 + t * 1.330274429))));
    double n = 1.0 - INV_SQRT_2PI * exp(-0.5 * ax * ax) * poly;
    return neg ? 1.0 - n : n;
}

static double bs_price(double S, double K, double r, double v, double T, int put)
{
    double sqrtT = sqrt(T);
    double vsT = v * sqrtT;
    double d1 = (log(S / K) + (r + 0.5 * v * v) * T) / vsT;
    double d2 = d1 - vsT;
    double Kdisc = K * exp(-r * T);
    if (put)
        return Kdisc * (1.0 - cndf(d2)) - S * (1.0 - cndf(d1));
    return S * cndf(d1) - Kdisc * cndf(d2);
}

/* Reference with the exact normal CDF from libm's erfc. */
static double ncdf_exact(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }

static double bs_reference(double S, double K, double r, double v, double T, int put)
{
    double vsT = v * sqrt(T);
    double d1 = (log(S / K) + (r + 0.5 * v * v) * T) / vsT;
    double d2 = d1 - vsT;
    double Kdisc = K * exp(-r * T);
    if (put)
        return Kdisc * ncdf_exact(-d2) - S * ncdf_exact(-d1);
    return S * ncdf_exact(d1) - Kdisc * ncdf_exact(d2);
}

static uint32_t verify_slice(size_t lo, size_t hi)
{
    uint32_t errors = 0;
    for (size_t i = lo; i < hi; i++) {
        double S = spot[i], K = strike[i], r = rate[i], v = vol[i], T = otime[i];
        int put = otype[i];
        double p = prices[i];
        double other = bs_price(S, K, r, v, T, !put);
        double call = put ? other : p, putp = put ? p : other;
        double Kdisc = K * exp(-r * T);
        double tol = 1e-9 * (S + K);
        int ok = fabs((call - putp) - (S - Kdisc)) <= tol
              && call >= fmax(0.0, S - Kdisc) - tol && call <= S + tol
              && putp >= fmax(0.0, Kdisc - S) - tol && putp <= Kdisc + tol
              && fabs(p - bs_reference(S, K, r, v, T, put)) <= 1e-6 * (S + K);
        if (!ok) {
            if (errors < 3)
                printf("blackscholes: option %u fails: S=%f K=%f r=%f v=%f T=%f %s price=%.10f\n",
                       (unsigned)i, S, K, r, v, T, put ? "put" : "call", p);
            errors++;
        }
    }
    return errors;
}

static uint64_t mix64(uint64_t h, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    h ^= u;
    h *= 0x100000001b3ull;
    return h ^ (h >> 29);
}

int guest_main(unsigned hart, unsigned nharts)
{
    size_t per = NOPT / nharts;
    size_t lo = per * hart;
    size_t hi = hart == nharts - 1 ? NOPT : lo + per;

    for (size_t i = lo; i < hi; i++)
        gen_option(i);

    for (unsigned run = 0; run < NRUNS; run++) {
        for (size_t i = lo; i < hi; i++)
            prices[i] = bs_price(spot[i], strike[i], rate[i], vol[i], otime[i], otype[i]);
        /* Each pass really recomputes (the compiler may not merge passes). */
        __asm__ volatile("" ::: "memory");
    }

    check[hart].errors = verify_slice(lo, hi);

    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    uint32_t errors = 0;
    for (unsigned h = 0; h < nharts; h++)
        errors += check[h].errors;

    uint64_t h = 0xcbf29ce484222325ull;
    double sum = 0.0;
    for (size_t i = 0; i < NOPT; i++) {
        h = mix64(h, prices[i]);
        sum += prices[i];
    }
    printf("blackscholes: options=%u runs=%u sum=%.6f checksum=%016llx %s\n",
           NOPT, NRUNS, sum, (unsigned long long)h, errors ? "FAIL" : "PASS");
    if (errors)
        printf("blackscholes: %u options failed the checks\n", (unsigned)errors);
    return errors ? 1 : 0;
}
