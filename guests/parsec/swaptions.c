/*
 * swaptions — PARSEC 3.0-style Monte Carlo pricing of a portfolio of
 * swaptions in the Heath-Jarrow-Morton framework (our own implementation
 * from the algorithm description; no PARSEC code).
 *
 * Algorithm
 *   Time runs on a grid t_j = j h (h = 0.5 years).  Swaption s (generated
 *   from its own splitmix64 stream) has an expiry of m grid steps (1..5
 *   years), an underlying swap of n periods (1..5 years, fixed rate K paid
 *   every h), an initial zero curve (Nelson-Siegel shape) and three
 *   volatility factors (level, slope, hump) that depend on time to
 *   maturity.  The state is the discrete forward curve f_j = f(t, t_j) for
 *   j < N = m + n.  Each Monte Carlo path steps the curve from t_0 to t_m:
 *       f_j += mu(j-i) h + sqrt(h) sum_k sigma_k(j-i) Z_k
 *   with the discrete arbitrage-free HJM drift
 *       mu(tau) = (h/2) sum_k [S_k(tau)^2 - S_k(tau-1)^2],
 *       S_k(tau) = sum_{l=1..tau} sigma_k(l),
 *   accumulating the money-market account B = exp(h sum_i f(t_i, t_i)).
 *   At expiry the payer swap is worth
 *       V = 1 - P(t_m, t_N) - K h sum_{p=1..n} P(t_m, t_{m+p})
 *   and the path pays 100 max(V, 0) / B.  Normals come from a uniform
 *   splitmix64 stream seeded per swaption, through an inverse cumulative
 *   normal (Acklam's rational approximation), drawn a block of BLK paths
 *   at a time and the block's curves evolved together (the benchmark's
 *   blocking).  Price = mean payoff over NTRIALS paths, with its standard
 *   error; each swaption's result depends only on its own stream.
 *
 * Parallel structure
 *   Swaptions are handed to harts statically, in contiguous ranges of the
 *   portfolio (hart h gets [h*NS/n, (h+1)*NS/n)).  Results go to a
 *   per-swaption array; after one barrier hart 0 checks and hashes it in
 *   swaption order.
 *
 * Sharing pattern
 *   Coarse, almost none: the swaption parameter array is read-shared, each
 *   hart writes only its own swaptions' result slots and works in private
 *   (stack) buffers.  One barrier at the end.
 *
 * Self-checks (hart 0, per swaption)
 *   - martingale tests: the mean of P(t_m, t_N)/B matches P(0, t_N), and the
 *     mean of V/B matches the forward swap value, within 5 standard errors;
 *   - 0 <= max(0, mean V/B) <= price <= P(0,t_m) - P(0,t_N) (+ 5 s.e.).
 *
 * Sizes (instructions at 1 hart)
 *   SIZE_TEST   16 swaptions x 1024 paths    (~46M instructions)
 *   SIZE_BENCH  64 swaptions x 14336 paths   (~2.3G instructions)
 *
 * Output (-DSWAPTIONS_VERBOSE adds a line per swaption)
 *   swaptions: swaptions=S trials=T sum=<sum of prices, swaption order>
 *              checksum=<hash of price and s.e. bit patterns> PASS
 *   identical for every hart count; exit 0, or 1 if a check failed.
 */
#include "runtime.h"
#include <math.h>
#include <string.h>

#if defined(SIZE_BENCH)
#define NSWAPTIONS 64u
#define NTRIALS    14336u
#elif defined(SIZE_TEST)
#define NSWAPTIONS 16u
#define NTRIALS    1024u
#else
#error "build with -DSIZE_TEST or -DSIZE_BENCH"
#endif

#define H        0.5            /* grid step, years */
#define MAXN     20             /* grid points: expiry <= 10 steps + tenor <= 10 */
#define NFACT    3
#define BLK      16             /* paths simulated together */
#define NOTIONAL 100.0
#define SEED     0x5a3b7105c0ffee11ull

#if NTRIALS % BLK
#error "NTRIALS must be a multiple of BLK"
#endif

struct swaption {
    unsigned m, n;              /* expiry steps, swap periods */
    double strike;
    double f0[MAXN];            /* initial forward curve f(0, t_j) */
    double sigma[NFACT][MAXN];  /* factor vols by time to maturity (index 1..) */
    double drift[MAXN];         /* mu(tau) h, tau = 1.. */
    double P0[MAXN + 1];        /* initial discount factors P(0, t_j) */
};

struct result {
    double price, stderr_;      /* payoff mean and its standard error */
    double bond, bond_se;       /* mean P(t_m,t_N)/B and its s.e. */
    double swap, swap_se;       /* mean V/B and its s.e. */
} CACHE_ALIGNED;

static struct swaption sw[NSWAPTIONS];
static struct result res[NSWAPTIONS];
static barrier_t bar;

static double unif(uint64_t *s) { return ((double)(splitmix64(s) >> 11) + 0.5) * 0x1.0p-53; }

/* ------------------------------------------------------------ set-up */

static void gen_swaption(unsigned s)
{
    struct swaption *w = &sw[s];
    uint64_t st = SEED ^ (0xD1B54A32D192ED03ull * (s + 1));
    w->m = 2 + (unsigned)(splitmix64(&st) % 9);          /* 1..5 years */
    w->n = 2 + (unsigned)(splitmix64(&st) % 9);          /* 1..5 years */
    unsigned N = w->m + w->n;

    /* Nelson-Siegel zero curve y(T) = b0 + b1 g(T) + b2 (g(T) - e^{-T/c}). */
    double b0 = 0.03 + 0.03 * unif(&st);
    double b1 = -0.025 + 0.03 * unif(&st);
    double b2 = -0.01 + 0.02 * unif(&st);
    double c = 1.0 + 2.0 * unif(&st);
    w->P0[0] = 1.0;
    for (unsigned j = 1; j <= N; j++) {
        double T = j * H, x = T / c;
        double g = (1.0 - exp(-x)) / x;
        double y = b0 + b1 * g + b2 * (g - exp(-x));
        w->P0[j] = exp(-y * T);
    }
    for (unsigned j = 0; j < N; j++)
        w->f0[j] = log(w->P0[j] / w->P0[j + 1]) / H;

    /* Factor volatilities by time to maturity tau (years = tau h). */
    double s1 = 0.006 + 0.006 * unif(&st);
    double s2 = 0.004 + 0.006 * unif(&st);
    double s3 = 0.002 + 0.004 * unif(&st);
    for (unsigned tau = 0; tau < MAXN; tau++) {
        double T = tau * H;
        w->sigma[0][tau] = s1;
        w->sigma[1][tau] = s2 * (exp(-0.35 * T) - 0.4);
        w->sigma[2][tau] = s3 * T * exp(-0.5 * T);
    }
    /* Drift so that discounted bond prices are martingales on the grid. */
    double S[NFACT] = { 0 };
    w->drift[0] = 0.0;
    for (unsigned tau = 1; tau < MAXN; tau++) {
        double mu = 0.0;
        for (unsigned k = 0; k < NFACT; k++) {
            double prev = S[k];
            S[k] += w->sigma[k][tau];
            mu += S[k] * S[k] - prev * prev;
        }
        w->drift[tau] = 0.5 * H * mu * H;
    }

    /* Strike around the at-the-money forward swap rate. */
    double annuity = 0.0;
    for (unsigned p = 1; p <= w->n; p++)
        annuity += H * w->P0[w->m + p];
    double atm = (w->P0[w->m] - w->P0[N]) / annuity;
    w->strike = atm * (0.8 + 0.4 * unif(&st));
}

/* ------------------------------------------------ inverse normal CDF */

/* Acklam's rational approximation (relative error ~1e-9). */
static double inv_cnd(double p)
{
    static const double a[6] = { -3.969683028665376e+01, 2.209460984245205e+02,
        -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01,
        2.506628277459239e+00 };
    static const double b[5] = { -5.447609879822406e+01, 1.615858368580409e+02,
        -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01 };
    static const double c[6] = { -7.784894002430293e-03, -3.223964580411365e-01,
        -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00,
        2.938163982698783e+00 };
    static const double d[4] = { 7.784695709041462e-03, 3.224671290700398e-01,
        2.445134137142996e+00, 3.754408661907416e+00 };
    const double plow = 0.02425;
    if (p < plow || p > 1.0 - plow) {
        double q = sqrt(-2.0 * log(p < plow ? p : 1.0 - p));
        double x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                 / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
        return p < plow ? x : -x;
    }
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
         / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
}

/* ---------------------------------------------------------- pricing */

static void price_swaption(unsigned s)
{
    const struct swaption *w = &sw[s];
    const unsigned m = w->m, N = m + w->n;
    const double sqh = sqrt(H);
    uint64_t st = SEED ^ 0x243F6A8885A308D3ull ^ (0x9E3779B97F4A7C15ull * (s + 1));

    double f[MAXN][BLK];                /* forward curves of the block's paths */
    double lnB[BLK];
    double z[NFACT][BLK];
    double vs[NFACT][MAXN];             /* sqrt(h) sigma_k(tau) */
    for (unsigned k = 0; k < NFACT; k++)
        for (unsigned tau = 0; tau < MAXN; tau++)
            vs[k][tau] = sqh * w->sigma[k][tau];

    double sum = 0, sum2 = 0, bsum = 0, bsum2 = 0, vsum = 0, vsum2 = 0;
    for (unsigned blk = 0; blk < NTRIALS / BLK; blk++) {
        for (unsigned j = 0; j < N; j++)
            for (unsigned q = 0; q < BLK; q++)
                f[j][q] = w->f0[j];
        for (unsigned q = 0; q < BLK; q++)
            lnB[q] = 0.0;

        for (unsigned i = 0; i < m; i++) {
            /* This step's shocks for the whole block, then the evolution. */
            for (unsigned k = 0; k < NFACT; k++)
                for (unsigned q = 0; q < BLK; q++)
                    z[k][q] = inv_cnd(unif(&st));
            for (unsigned q = 0; q < BLK; q++)
                lnB[q] += H * f[i][q];
            for (unsigned j = i + 1; j < N; j++) {
                unsigned tau = j - i;
                double mu = w->drift[tau];
                double v0 = vs[0][tau], v1 = vs[1][tau], v2 = vs[2][tau];
                for (unsigned q = 0; q < BLK; q++)
                    f[j][q] += mu + v0 * z[0][q] + v1 * z[1][q] + v2 * z[2][q];
            }
        }

        /* At expiry: discount factors along the remaining curve, payoff. */
        for (unsigned q = 0; q < BLK; q++) {
            double cum = 0.0, annuity = 0.0, P = 1.0;
            for (unsigned j = m; j < N; j++) {
                cum += H * f[j][q];
                P = exp(-cum);
                annuity += H * P;
            }
            double disc = exp(-lnB[q]);
            double V = (1.0 - P - w->strike * annuity) * disc;
            double pay = V > 0.0 ? NOTIONAL * V : 0.0;
            double bond = P * disc;
            sum += pay;  sum2 += pay * pay;
            bsum += bond; bsum2 += bond * bond;
            vsum += V;   vsum2 += V * V;
        }
    }

    const double n = NTRIALS;
    struct result *r = &res[s];
    r->price = sum / n;
    r->stderr_ = sqrt(fmax(0.0, sum2 / n - r->price * r->price) / (n - 1));
    r->bond = bsum / n;
    r->bond_se = sqrt(fmax(0.0, bsum2 / n - r->bond * r->bond) / (n - 1));
    r->swap = vsum / n;
    r->swap_se = sqrt(fmax(0.0, vsum2 / n - r->swap * r->swap) / (n - 1));
}

/* ------------------------------------------------------------ checks */

static int check_swaption(unsigned s)
{
    const struct swaption *w = &sw[s];
    const struct result *r = &res[s];
    const unsigned m = w->m, N = m + w->n;
    double annuity = 0.0;
    for (unsigned p = 1; p <= w->n; p++)
        annuity += H * w->P0[m + p];
    double fwd = w->P0[m] - w->P0[N] - w->strike * annuity;   /* forward swap value */
    double upper = NOTIONAL * (w->P0[m] - w->P0[N]);
    const double eps = 1e-12;

    int ok = fabs(r->bond - w->P0[N]) <= 5.0 * r->bond_se + eps
          && fabs(r->swap - fwd) <= 5.0 * r->swap_se + eps
          && r->price >= NOTIONAL * fmax(0.0, r->swap) - 1e-9
          && r->price >= 0.0
          && r->price <= upper + 5.0 * r->stderr_;
#ifdef SWAPTIONS_VERBOSE
    printf("swaptions: %2u m=%u n=%u K=%.5f price=%.6f se=%.6f bond dev=%.2f se, swap dev=%.2f se\n",
           s, m, w->n, w->strike, r->price, r->stderr_, (r->bond - w->P0[N]) / r->bond_se,
           (r->swap - fwd) / r->swap_se);
#endif
    if (!ok)
        printf("swaptions: swaption %u fails: price=%.8f se=%.8f bond=%.8f (P0=%.8f se=%.2e)"
               " swap=%.8f (fwd=%.8f se=%.2e) upper=%.8f\n",
               s, r->price, r->stderr_, r->bond, w->P0[N], r->bond_se,
               r->swap, fwd, r->swap_se, upper);
    return ok;
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
    unsigned lo = NSWAPTIONS * hart / nharts;
    unsigned hi = NSWAPTIONS * (hart + 1) / nharts;

    for (unsigned s = lo; s < hi; s++) {
        gen_swaption(s);
        price_swaption(s);
    }

    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    unsigned bad = 0;
    uint64_t h = 0xcbf29ce484222325ull;
    double sum = 0.0;
    for (unsigned s = 0; s < NSWAPTIONS; s++) {
        bad += !check_swaption(s);
        h = mix64(h, res[s].price);
        h = mix64(h, res[s].stderr_);
        sum += res[s].price;
    }
    printf("swaptions: swaptions=%u trials=%u sum=%.9f checksum=%016llx %s\n",
           NSWAPTIONS, NTRIALS, sum, (unsigned long long)h, bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}
