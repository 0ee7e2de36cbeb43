/*
 * The libsrtp side of the SRTP comparison (issue 3): the same figures as
 * `cargo bench -p pbx-srtp --bench srtp` (its `_single` lines: one packet
 * per call, as libsrtp has no batch API), measured the same way, so the
 * two can be compared on the machine at hand. Built and run by run.sh
 * against libsrtp 2.5.0 configured with OpenSSL.
 *
 * Each figure is the median of ROUNDS rounds (after WARMUP), a round being
 * SEGMENTS timed segments of BATCH packets prepared untimed in a small
 * pool (plaintext for protect, SRTP from a sender for unprotect and
 * transcode); with N streams the packets round-robin over N SSRCs, the
 * streams made on first sight from an ssrc_any template, as a PBX does.
 * Prints `srtp <SUITE> <BYTES>B <STREAMS>streams <op> <NS> ns/packet libsrtp`.
 */
#include <srtp.h> /* libsrtp 2.5.0 source tree include/ */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 64
#define SEGMENTS 60
#define ROUNDS 11
#define WARMUP 2

enum op { PROTECT, UNPROTECT, TRANSCODE };

struct suite {
    const char *name;
    void (*rtp)(srtp_crypto_policy_t *);
    void (*rtcp)(srtp_crypto_policy_t *);
    int key_len; /* master key + salt */
};

static const struct suite SUITES[] = {
    {"AES_CM_128_HMAC_SHA1_80", srtp_crypto_policy_set_rtp_default,
     srtp_crypto_policy_set_rtp_default, 30},
    {"AES_CM_128_HMAC_SHA1_32", srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32,
     srtp_crypto_policy_set_rtp_default, 30},
    {"AES_256_CM_HMAC_SHA1_80", srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
     srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80, 46},
    {"AES_256_CM_HMAC_SHA1_32", srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32,
     srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80, 46},
    {"AEAD_AES_128_GCM", srtp_crypto_policy_set_aes_gcm_128_16_auth,
     srtp_crypto_policy_set_aes_gcm_128_16_auth, 28},
    {"AEAD_AES_256_GCM", srtp_crypto_policy_set_aes_gcm_256_16_auth,
     srtp_crypto_policy_set_aes_gcm_256_16_auth, 44},
};

static unsigned char pool[BATCH][1212 + 64];
static int lens[BATCH];

static srtp_t session(const struct suite *s, unsigned char seed, srtp_ssrc_type_t dir) {
    static unsigned char keys[8][64];
    static int used;
    unsigned char *key = keys[used++ % 8];
    for (int i = 0; i < s->key_len; i++)
        key[i] = (unsigned char)(seed * 31 + i);
    srtp_policy_t p;
    memset(&p, 0, sizeof p);
    s->rtp(&p.rtp);
    s->rtcp(&p.rtcp);
    p.ssrc.type = dir;
    p.key = key;
    p.window_size = 128;
    p.allow_repeat_tx = 0;
    srtp_t out;
    if (srtp_create(&out, &p) != srtp_err_status_ok) {
        fprintf(stderr, "srtp_create failed for %s\n", s->name);
        exit(1);
    }
    return out;
}

struct source {
    int bytes, streams;
    unsigned long n;
};

static void fill(struct source *src) {
    for (int i = 0; i < BATCH; i++) {
        unsigned k = src->n % src->streams;
        unsigned short seq = (unsigned short)(60000 + src->n / src->streams);
        unsigned ts = (unsigned)src->n * 160, ssrc = 0x10000000u + k;
        unsigned char *b = pool[i];
        b[0] = 0x80;
        b[1] = 0;
        b[2] = seq >> 8, b[3] = seq;
        b[4] = ts >> 24, b[5] = ts >> 16, b[6] = ts >> 8, b[7] = ts;
        b[8] = ssrc >> 24, b[9] = ssrc >> 16, b[10] = ssrc >> 8, b[11] = ssrc;
        for (int j = 12; j < src->bytes; j++)
            b[j] = (unsigned char)((j - 12) ^ 0x55);
        lens[i] = src->bytes;
        src->n++;
    }
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check(srtp_err_status_t e, const char *what) {
    if (e != srtp_err_status_ok) {
        fprintf(stderr, "%s failed: %d\n", what, e);
        exit(1);
    }
}

static double run(const struct suite *s, int bytes, int streams, enum op op) {
    srtp_t a_tx = session(s, 1, ssrc_any_outbound);
    srtp_t a_rx = session(s, 1, ssrc_any_inbound);
    srtp_t b_tx = session(s, 2, ssrc_any_outbound);
    struct source src = {bytes, streams, 0};
    double times[ROUNDS];
    for (int round = 0; round < WARMUP + ROUNDS; round++) {
        double total = 0;
        for (int seg = 0; seg < SEGMENTS; seg++) {
            fill(&src);
            if (op != PROTECT)
                for (int i = 0; i < BATCH; i++)
                    check(srtp_protect(a_tx, pool[i], &lens[i]), "protect (setup)");
            double t = now_ns();
            switch (op) {
            case PROTECT:
                for (int i = 0; i < BATCH; i++)
                    check(srtp_protect(a_tx, pool[i], &lens[i]), "protect");
                break;
            case UNPROTECT:
                for (int i = 0; i < BATCH; i++)
                    check(srtp_unprotect(a_rx, pool[i], &lens[i]), "unprotect");
                break;
            case TRANSCODE:
                for (int i = 0; i < BATCH; i++) {
                    check(srtp_unprotect(a_rx, pool[i], &lens[i]), "unprotect");
                    check(srtp_protect(b_tx, pool[i], &lens[i]), "protect");
                }
                break;
            }
            total += now_ns() - t;
        }
        if (round >= WARMUP)
            times[round - WARMUP] = total / (SEGMENTS * BATCH);
    }
    srtp_dealloc(a_tx);
    srtp_dealloc(a_rx);
    srtp_dealloc(b_tx);
    qsort(times, ROUNDS, sizeof times[0], cmp);
    return times[ROUNDS / 2];
}

int main(int argc, char **argv) {
    check(srtp_init(), "srtp_init");
    const char *ops[] = {"protect", "unprotect", "transcode"};
    /* One untimed pass first: the clock and caches settle before the first figure. */
    for (int o = 0; o < 3; o++)
        run(&SUITES[0], 172, 1, (enum op)o);
    for (size_t i = 0; i < sizeof SUITES / sizeof SUITES[0]; i++) {
        int selected = argc < 2;
        for (int a = 1; a < argc; a++)
            selected |= strstr(SUITES[i].name, argv[a]) != NULL;
        if (!selected)
            continue;
        int sizes[] = {172, 1212}, counts[] = {1, 1000};
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 2; c++)
                for (int o = 0; o < 3; o++)
                    printf("srtp %s %dB %dstreams %s %.0f ns/packet libsrtp\n", SUITES[i].name, sizes[b],
                           counts[c], ops[o], run(&SUITES[i], sizes[b], counts[c], (enum op)o));
        fflush(stdout);
    }
    return 0;
}
