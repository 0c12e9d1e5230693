/*
 * bodytrack — PARSEC 3.0-style articulated body tracking with an annealed
 * particle filter (our own implementation from the algorithm description;
 * no PARSEC code).
 *
 * Algorithm
 *   Body model: 10 body parts (torso, head, upper/lower arms, thighs,
 *   shins), each a cylinder between two joints, driven by a 12-dimensional
 *   pose: root position on the ground plane (x, z), heading (yaw), torso
 *   lean and 8 joint angles (shoulders, elbows, hips, knees; swing in the
 *   body's sagittal plane).  Forward kinematics gives the 3-D joints.
 *   Input: a walking motion (the ground truth pose per frame) is rendered
 *   into NCAM pinhole cameras placed around the scene: a foreground
 *   silhouette per camera (pixels inside any projected limb capsule, with
 *   deterministic salt-and-pepper noise as from background subtraction),
 *   then an edge map = Sobel gradient magnitude of the silhouette, blurred
 *   with a separable 5-tap binomial filter (row pass, column pass).
 *   Tracking: NPART particles (poses).  Per frame, NLAYER annealing layers:
 *     1. diffuse every particle with Gaussian noise (sigma shrinking with
 *        the layer) and compute its error: for every camera and part,
 *        project the cylinder; sample its two outline lines on the edge
 *        map (error += (1-edge)^2) and three interior lines on the
 *        silhouette (error += (1-fg)^2); normalised per sample;
 *     2. choose the annealing exponent beta by bisection so that the
 *        weights w = exp(-beta (err - min err)) keep a survival rate
 *        (effective particles / N) of ALPHA;
 *     3. layers before the last: systematic resampling by w; last layer:
 *        the pose estimate = weighted mean of the particles, then resample
 *        as the start set of the next frame.
 *   The estimate's 11 joint positions are compared with the truth.
 *
 * Parallel structure
 *   Per frame: image rendering (rows of all cameras in static slices),
 *   barrier, Sobel rows, barrier, horizontal blur rows, barrier, vertical
 *   blur rows, barrier.  Per layer: particles handed out dynamically in
 *   chunks of PCHUNK from an atomic counter; each hart diffuses and scores
 *   its particles; barrier; hart 0 computes beta, the weights, resamples
 *   (or estimates) and resets the counter; barrier.  Noise for particle i
 *   comes from a splitmix64 stream seeded by (frame, layer, i), so results
 *   do not depend on which hart scores which particle; hart 0 does every
 *   reduction in index order.
 *
 * Sharing pattern
 *   Medium granularity, high sharing: every hart reads all camera images
 *   and the shared resampled particle set, and writes its particles into
 *   the shared particle and error arrays (interleaved chunks); hart 0 reads
 *   all of them each layer.  Image filtering shares rows at slice borders.
 *
 * Sizes (instructions at 1 hart)
 *   SIZE_TEST   3 cameras 80x60,   160 particles, 4 layers, 3 frames (~84M)
 *   SIZE_BENCH  4 cameras 160x120, 1200 particles, 5 layers, 8 frames  (~2.3G)
 *   (each particle evaluation: 10 parts x cameras x 5 lines x NSAMP samples)
 *
 * Output
 *   bodytrack: frames=F particles=N layers=L cams=C err_mm=<mean joint error>
 *              max_mm=<worst frame> checksum=<hash of estimate bits> PASS
 *   identical for every hart count; exit 0, or 1 if the tracking error is
 *   above the bound (the tracker lost the body).  -DBT_DEBUG adds a line
 *   per frame (error of the estimate and of the untracked initial pose).
 */
#include "runtime.h"
#include <math.h>
#include <string.h>

#if defined(SIZE_BENCH)
#define IMG_W   160
#define IMG_H   120
#define NCAM    4
#define NPART   1200
#define NLAYER  5
#define NFRAME  8
#elif defined(SIZE_TEST)
#define IMG_W   80
#define IMG_H   60
#define NCAM    3
#define NPART   160
#define NLAYER  4
#define NFRAME  3
#else
#error "build with -DSIZE_TEST or -DSIZE_BENCH"
#endif

#define NDIM    12
#define NBODY   10          /* body parts (cylinders) */
#define NJOINT  11          /* joints used for the error metric */
#define NSAMP   6           /* samples per line per part */
#define PCHUNK  4           /* particles per dynamic hand-out */
#define ALPHA   0.5         /* annealing survival rate */
#define BISECT  18          /* bisection steps for beta */
#define SEED    0xb0d7747ac4e11ull

/* Acceptance bounds for the mean and worst per-frame joint error (mm). */
#define ERR_MEAN_MM 70
#define ERR_MAX_MM  110

typedef struct { double x, y, z; } vec3;
typedef struct { double pos[3], right[3], up[3], fwd[3]; double f, cx, cy; } camera_t;
typedef struct { float ua, va, ub, vb, r; } capsule_t;   /* projected part */

/* ------------------------------------------------------------ shared data */

static NOINIT float fg[NCAM][IMG_H][IMG_W];      /* silhouettes 0/1 */
static NOINIT float edge[NCAM][IMG_H][IMG_W];    /* blurred edge maps */
static NOINIT float tmp1[NCAM][IMG_H][IMG_W];
static NOINIT float tmp2[NCAM][IMG_H][IMG_W];

static NOINIT double base[NPART][NDIM];          /* resampled set */
static NOINIT double part[NPART][NDIM];          /* diffused particles */
static NOINIT double perr[NPART];                /* error per particle */
static NOINIT double wgt[NPART];

static camera_t cams[NCAM];
static barrier_t bar;
static volatile uint32_t next_part CACHE_ALIGNED;

static double est[NFRAME][NDIM];
static double frame_err_mm[NFRAME];
static uint64_t hash = 0xcbf29ce484222325ull;

/* Body dimensions (metres). */
static const double L_TORSO = 0.55, L_HEAD = 0.24, L_UARM = 0.30, L_FARM = 0.28;
static const double L_THIGH = 0.45, L_SHIN = 0.45, PELVIS_Y = 0.93;
static const double SHOULDER_W = 0.20, HIP_W = 0.10;
static const double RADIUS[NBODY] = {
    0.15, 0.10, 0.05, 0.04, 0.05, 0.04, 0.08, 0.06, 0.08, 0.06 };

/* Diffusion sigma per dimension at the first layer of a frame. */
static const double SIGMA[NDIM] = {
    0.04, 0.04, 0.06, 0.05, 0.15, 0.15, 0.15, 0.15, 0.15, 0.15, 0.15, 0.15 };

static void hash_mix(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        hash ^= b[i];
        hash *= 0x100000001b3ull;
    }
}

/* ------------------------------------------------------------- kinematics */

/* The walking motion: ground-truth pose of frame t. */
static void truth_pose(int t, double *p)
{
    double ph = 0.55 * t + 0.3;
    p[0] = -0.25 + 0.07 * t;                /* root x */
    p[1] = 0.05 * sin(0.4 * t);             /* root z */
    p[2] = 0.35 + 0.04 * t;                 /* yaw */
    p[3] = 0.10 + 0.04 * sin(ph);           /* torso lean */
    p[4] = -0.40 * sin(ph);                 /* shoulder L */
    p[5] = 0.35 + 0.20 * sin(ph + 0.8);     /* elbow L */
    p[6] = 0.40 * sin(ph);                  /* shoulder R */
    p[7] = 0.35 - 0.20 * sin(ph + 0.8);     /* elbow R */
    p[8] = 0.45 * sin(ph);                  /* hip L */
    p[9] = 0.35 + 0.30 * sin(ph - 1.0);     /* knee L */
    p[10] = -0.45 * sin(ph);                /* hip R */
    p[11] = 0.35 - 0.30 * sin(ph - 1.0);    /* knee R */
}

/* Forward kinematics: seg[2k], seg[2k+1] are the ends of part k; joint[]
 * the 11 joints of the error metric. */
static void kinematics(const double *p, vec3 seg[2 * NBODY], vec3 joint[NJOINT])
{
    double cy = cos(p[2]), sy = sin(p[2]);
    vec3 b[22];                         /* body-frame points */
    double lc = cos(p[3]), ls = sin(p[3]);
    vec3 pel = { 0, 0, 0 };
    vec3 neck = { 0, L_TORSO * lc, L_TORSO * ls };
    vec3 top = { 0, neck.y + L_HEAD * lc, neck.z + L_HEAD * ls };
    vec3 sh = { 0, neck.y - 0.05 * lc, neck.z - 0.05 * ls };
    int n = 0;
    b[n++] = pel; b[n++] = neck;                         /* torso */
    b[n++] = neck; b[n++] = top;                         /* head */
    for (int side = 0; side < 2; side++) {               /* arms */
        double a = p[4 + 2 * side], e = a + p[5 + 2 * side];
        vec3 s = { side ? SHOULDER_W : -SHOULDER_W, sh.y, sh.z };
        vec3 el = { s.x, s.y - L_UARM * cos(a), s.z + L_UARM * sin(a) };
        vec3 ha = { s.x, el.y - L_FARM * cos(e), el.z + L_FARM * sin(e) };
        b[n++] = s; b[n++] = el; b[n++] = el; b[n++] = ha;
    }
    for (int side = 0; side < 2; side++) {               /* legs */
        double h = p[8 + 2 * side], k = h - p[9 + 2 * side];
        vec3 hp = { side ? HIP_W : -HIP_W, 0, 0 };
        vec3 kn = { hp.x, -L_THIGH * cos(h), L_THIGH * sin(h) };
        vec3 ft = { hp.x, kn.y - L_SHIN * cos(k), kn.z + L_SHIN * sin(k) };
        b[n++] = hp; b[n++] = kn; b[n++] = kn; b[n++] = ft;
    }
    for (int i = 0; i < 2 * NBODY; i++) {
        vec3 q = b[i];
        seg[i].x = p[0] + cy * q.x + sy * q.z;
        seg[i].y = PELVIS_Y + q.y;
        seg[i].z = p[1] - sy * q.x + cy * q.z;
    }
    /* joints: pelvis, neck, head top, elbows, hands, knees, feet */
    static const int ji[NJOINT] = { 0, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19 };
    for (int j = 0; j < NJOINT; j++)
        joint[j] = seg[ji[j]];
}

static void setup_cameras(void)
{
    for (int c = 0; c < NCAM; c++) {
        camera_t *k = &cams[c];
        double a = 2.0 * M_PI * c / NCAM + 0.3;
        k->pos[0] = 4.0 * cos(a);
        k->pos[1] = 1.4;
        k->pos[2] = 4.0 * sin(a);
        double t[3] = { 0.0, 0.9, 0.0 }, f[3], r[3], u[3];
        double n = 0;
        for (int i = 0; i < 3; i++) { f[i] = t[i] - k->pos[i]; n += f[i] * f[i]; }
        n = sqrt(n);
        for (int i = 0; i < 3; i++) f[i] /= n;
        /* right = fwd x worldup(0,1,0) */
        r[0] = -f[2]; r[1] = 0; r[2] = f[0];
        n = sqrt(r[0] * r[0] + r[2] * r[2]);
        r[0] /= n; r[2] /= n;
        /* up = right x fwd */
        u[0] = r[1] * f[2] - r[2] * f[1];
        u[1] = r[2] * f[0] - r[0] * f[2];
        u[2] = r[0] * f[1] - r[1] * f[0];
        for (int i = 0; i < 3; i++) { k->fwd[i] = f[i]; k->right[i] = r[i]; k->up[i] = u[i]; }
        k->f = 1.15 * IMG_W;
        k->cx = 0.5 * IMG_W;
        k->cy = 0.5 * IMG_H;
    }
}

/* Project a point; returns depth. */
static double project(const camera_t *k, vec3 q, double *u, double *v)
{
    double d[3] = { q.x - k->pos[0], q.y - k->pos[1], q.z - k->pos[2] };
    double x = d[0] * k->right[0] + d[1] * k->right[1] + d[2] * k->right[2];
    double y = d[0] * k->up[0] + d[1] * k->up[1] + d[2] * k->up[2];
    double z = d[0] * k->fwd[0] + d[1] * k->fwd[1] + d[2] * k->fwd[2];
    *u = k->cx + k->f * x / z;
    *v = k->cy - k->f * y / z;
    return z;
}

static void project_body(const vec3 seg[2 * NBODY], int c, capsule_t cap[NBODY])
{
    for (int k = 0; k < NBODY; k++) {
        double ua, va, ub, vb;
        double za = project(&cams[c], seg[2 * k], &ua, &va);
        double zb = project(&cams[c], seg[2 * k + 1], &ub, &vb);
        cap[k].ua = (float)ua; cap[k].va = (float)va;
        cap[k].ub = (float)ub; cap[k].vb = (float)vb;
        cap[k].r = (float)(cams[c].f * RADIUS[k] * 2.0 / (za + zb));
    }
}

/* --------------------------------------------------------------- images */

static inline uint64_t mix3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t s = SEED ^ (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full)
                 ^ (c * 0x165667B19E3779F9ull);
    return splitmix64(&s);
}

/* Render one image row (silhouette with noise). */
static void render_row(int frame, int c, int y, const capsule_t cap[NBODY])
{
    for (int x = 0; x < IMG_W; x++) {
        float px = x + 0.5f, py = y + 0.5f;
        int in = 0;
        for (int k = 0; k < NBODY && !in; k++) {
            float dx = cap[k].ub - cap[k].ua, dy = cap[k].vb - cap[k].va;
            float wx = px - cap[k].ua, wy = py - cap[k].va;
            float l2 = dx * dx + dy * dy;
            float t = l2 > 0 ? (wx * dx + wy * dy) / l2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = wx - t * dx, ey = wy - t * dy;
            in = ex * ex + ey * ey <= cap[k].r * cap[k].r;
        }
        uint64_t h = mix3((uint64_t)frame, (uint64_t)(c * IMG_H + y), (uint64_t)x);
        if ((h & 1023) < 20)                    /* ~2% flipped pixels */
            in = !in;
        fg[c][y][x] = in ? 1.0f : 0.0f;
    }
}

static inline float pix(float img[IMG_H][IMG_W], int x, int y)
{
    x = x < 0 ? 0 : x >= IMG_W ? IMG_W - 1 : x;
    y = y < 0 ? 0 : y >= IMG_H ? IMG_H - 1 : y;
    return img[y][x];
}

static void sobel_row(int c, int y)
{
    for (int x = 0; x < IMG_W; x++) {
        float gx = pix(fg[c], x + 1, y - 1) + 2 * pix(fg[c], x + 1, y) + pix(fg[c], x + 1, y + 1)
                 - pix(fg[c], x - 1, y - 1) - 2 * pix(fg[c], x - 1, y) - pix(fg[c], x - 1, y + 1);
        float gy = pix(fg[c], x - 1, y + 1) + 2 * pix(fg[c], x, y + 1) + pix(fg[c], x + 1, y + 1)
                 - pix(fg[c], x - 1, y - 1) - 2 * pix(fg[c], x, y - 1) - pix(fg[c], x + 1, y - 1);
        float m = sqrtf(gx * gx + gy * gy) * 0.25f;
        tmp1[c][y][x] = m > 1.0f ? 1.0f : m;
    }
}

static void blur_row_h(int c, int y)
{
    for (int x = 0; x < IMG_W; x++)
        tmp2[c][y][x] = (pix(tmp1[c], x - 2, y) + 4 * pix(tmp1[c], x - 1, y) + 6 * pix(tmp1[c], x, y)
                         + 4 * pix(tmp1[c], x + 1, y) + pix(tmp1[c], x + 2, y)) * (1.0f / 16);
}

static void blur_row_v(int c, int y)
{
    for (int x = 0; x < IMG_W; x++) {
        float v = (pix(tmp2[c], x, y - 2) + 4 * pix(tmp2[c], x, y - 1) + 6 * pix(tmp2[c], x, y)
                   + 4 * pix(tmp2[c], x, y + 1) + pix(tmp2[c], x, y + 2)) * (1.0f / 16) * 2.0f;
        edge[c][y][x] = v > 1.0f ? 1.0f : v;
    }
}

typedef void (*row_fn)(int c, int y);

/* Static contiguous slices over all rows of all cameras. */
static void for_rows(unsigned hart, unsigned nharts, row_fn fn)
{
    unsigned total = NCAM * IMG_H;
    unsigned lo = total * hart / nharts, hi = total * (hart + 1) / nharts;
    for (unsigned r = lo; r < hi; r++)
        fn((int)(r / IMG_H), (int)(r % IMG_H));
}

static void make_images(unsigned hart, unsigned nharts, int frame)
{
    /* Every hart projects the true pose itself (cheap, identical). */
    double tp[NDIM];
    vec3 seg[2 * NBODY], jt[NJOINT];
    capsule_t cap[NCAM][NBODY];
    truth_pose(frame, tp);
    kinematics(tp, seg, jt);
    for (int c = 0; c < NCAM; c++)
        project_body(seg, c, cap[c]);
    unsigned total = NCAM * IMG_H;
    unsigned lo = total * hart / nharts, hi = total * (hart + 1) / nharts;
    for (unsigned r = lo; r < hi; r++)
        render_row(frame, (int)(r / IMG_H), (int)(r % IMG_H), cap[r / IMG_H]);
    barrier_wait(&bar);
    for_rows(hart, nharts, sobel_row);
    barrier_wait(&bar);
    for_rows(hart, nharts, blur_row_h);
    barrier_wait(&bar);
    for_rows(hart, nharts, blur_row_v);
    barrier_wait(&bar);
}

/* ------------------------------------------------------------ likelihood */

static inline float sample(float img[IMG_H][IMG_W], float u, float v)
{
    if (!(u >= 0 && v >= 0 && u < IMG_W && v < IMG_H))
        return 0.0f;
    return img[(int)v][(int)u];
}

static double particle_error(const double *p)
{
    vec3 seg[2 * NBODY], jt[NJOINT];
    capsule_t cap[NBODY];
    kinematics(p, seg, jt);
    float e_edge = 0, e_sil = 0;
    for (int c = 0; c < NCAM; c++) {
        project_body(seg, c, cap);
        for (int k = 0; k < NBODY; k++) {
            float dx = cap[k].ub - cap[k].ua, dy = cap[k].vb - cap[k].va;
            float len = sqrtf(dx * dx + dy * dy);
            float nx, ny;
            if (len > 1e-3f) { nx = -dy / len; ny = dx / len; }
            else { nx = 1; ny = 0; }
            float r = cap[k].r;
            for (int s = 0; s < NSAMP; s++) {
                float t = (s + 0.5f) * (1.0f / NSAMP);
                float u = cap[k].ua + t * dx, v = cap[k].va + t * dy;
                float a;
                a = 1.0f - sample(edge[c], u + r * nx, v + r * ny); e_edge += a * a;
                a = 1.0f - sample(edge[c], u - r * nx, v - r * ny); e_edge += a * a;
                a = 1.0f - sample(fg[c], u, v); e_sil += a * a;
                a = 1.0f - sample(fg[c], u + 0.5f * r * nx, v + 0.5f * r * ny); e_sil += a * a;
                a = 1.0f - sample(fg[c], u - 0.5f * r * nx, v - 0.5f * r * ny); e_sil += a * a;
            }
        }
    }
    const float ne = 1.0f / (NCAM * NBODY * NSAMP * 2), ns = 1.0f / (NCAM * NBODY * NSAMP * 3);
    return (double)e_edge * ne + (double)e_sil * ns;
}

/* Gaussian noise, Box-Muller, from a stream seeded by (frame, layer, i). */
static void diffuse(int frame, int layer, int i, const double *src, double *dst)
{
    uint64_t s = mix3((uint64_t)frame + 1000, (uint64_t)layer, (uint64_t)i);
    double scale = 1.0;
    for (int l = 0; l < layer; l++)
        scale *= 0.55;
    for (int d = 0; d < NDIM; d += 2) {
        double u1 = ((splitmix64(&s) >> 11) + 1) * (1.0 / 9007199254740993.0);
        double u2 = (splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
        double m = sqrt(-2.0 * log(u1));
        dst[d] = src[d] + SIGMA[d] * scale * m * cos(2 * M_PI * u2);
        dst[d + 1] = src[d + 1] + SIGMA[d + 1] * scale * m * sin(2 * M_PI * u2);
    }
}

/* ----------------------------------------------------------- hart 0 steps */

static double emin_cached;

static double survival(double beta)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < NPART; i++) {
        double w = exp(-beta * (perr[i] - emin_cached));
        s += w;
        s2 += w * w;
    }
    return s * s / s2 / NPART;
}

/* Pick beta (bisection in log space) for survival rate ALPHA; set wgt[]. */
static double anneal_weights(void)
{
    double emin = perr[0];
    for (int i = 1; i < NPART; i++)
        if (perr[i] < emin)
            emin = perr[i];
    emin_cached = emin;
    double lo = log(0.1), hi = log(1e5);
    for (int it = 0; it < BISECT; it++) {
        double mid = 0.5 * (lo + hi);
        if (survival(exp(mid)) > ALPHA)
            lo = mid;               /* too flat: sharpen */
        else
            hi = mid;
    }
    double beta = exp(0.5 * (lo + hi));
    for (int i = 0; i < NPART; i++)
        wgt[i] = exp(-beta * (perr[i] - emin));
    return beta;
}

/* Systematic resampling of part[] by wgt[] into base[]. */
static void resample(int frame, int layer)
{
    double tot = 0;
    for (int i = 0; i < NPART; i++)
        tot += wgt[i];
    uint64_t s = mix3((uint64_t)frame + 7000, (uint64_t)layer, 99);
    double u = (splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0) * tot / NPART;
    double step = tot / NPART, c = wgt[0];
    int j = 0;
    for (int i = 0; i < NPART; i++) {
        double target = u + step * i;
        while (c < target && j < NPART - 1)
            c += wgt[++j];
        memcpy(base[i], part[j], sizeof base[i]);
    }
}

static double joint_error_mm(const double *p, int frame)
{
    double tp[NDIM];
    vec3 sa[2 * NBODY], ja[NJOINT], sb[2 * NBODY], jb[NJOINT];
    truth_pose(frame, tp);
    kinematics(p, sa, ja);
    kinematics(tp, sb, jb);
    double e = 0;
    for (int j = 0; j < NJOINT; j++) {
        double dx = ja[j].x - jb[j].x, dy = ja[j].y - jb[j].y, dz = ja[j].z - jb[j].z;
        e += sqrt(dx * dx + dy * dy + dz * dz);
    }
    return 1000.0 * e / NJOINT;
}

/* ------------------------------------------------------------------ main */

int guest_main(unsigned hart, unsigned nharts)
{
    if (hart == 0) {
        setup_cameras();
        double p0[NDIM];
        truth_pose(0, p0);          /* the tracker is initialised at frame 0's pose */
        for (int i = 0; i < NPART; i++)
            memcpy(base[i], p0, sizeof p0);
        next_part = 0;
    }
    barrier_wait(&bar);

    for (int f = 0; f < NFRAME; f++) {
        make_images(hart, nharts, f);
        for (int l = 0; l < NLAYER; l++) {
            for (;;) {
                uint32_t i0 = atomic_fetch_add32(&next_part, PCHUNK);
                if (i0 >= NPART)
                    break;
                uint32_t i1 = i0 + PCHUNK > NPART ? NPART : i0 + PCHUNK;
                for (uint32_t i = i0; i < i1; i++) {
                    diffuse(f, l, (int)i, base[i], part[i]);
                    perr[i] = particle_error(part[i]);
                }
            }
            barrier_wait(&bar);
            if (hart == 0) {
                double beta = anneal_weights();
                hash_mix(&beta, sizeof beta);
                if (l == NLAYER - 1) {
                    double tot = 0, m[NDIM] = { 0 };
                    for (int i = 0; i < NPART; i++) {
                        tot += wgt[i];
                        for (int d = 0; d < NDIM; d++)
                            m[d] += wgt[i] * part[i][d];
                    }
                    for (int d = 0; d < NDIM; d++)
                        est[f][d] = m[d] / tot;
                    hash_mix(est[f], sizeof est[f]);
                    frame_err_mm[f] = joint_error_mm(est[f], f);
#ifdef BT_DEBUG     /* tuning aid: per-frame error vs. not tracking at all */
                    {
                        double p0[NDIM];
                        truth_pose(0, p0);
                        printf("frame %d err_mm %d static_mm %d beta %d\n", f,
                               (int)frame_err_mm[f], (int)joint_error_mm(p0, f), (int)beta);
                    }
#endif
                }
                resample(f, l);
                next_part = 0;
            }
            barrier_wait(&bar);
        }
    }
    if (hart != 0)
        return 0;

    double sum = 0, mx = 0;
    for (int f = 0; f < NFRAME; f++) {
        sum += frame_err_mm[f];
        if (frame_err_mm[f] > mx)
            mx = frame_err_mm[f];
    }
    unsigned mean_mm = (unsigned)(sum / NFRAME + 0.5), max_mm = (unsigned)(mx + 0.5);
    int ok = mean_mm <= ERR_MEAN_MM && max_mm <= ERR_MAX_MM;
    printf("bodytrack: frames=%d particles=%d layers=%d cams=%d err_mm=%u max_mm=%u "
           "checksum=0x%016llx %s\n", NFRAME, NPART, NLAYER, NCAM, mean_mm, max_mm,
           (unsigned long long)hash, ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
