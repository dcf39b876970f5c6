/* The bare durable-write loop: exactly the system calls of aerie's (and
 * Swift's) durable object PUT, and nothing else, so bench/limits.sh can
 * say how close a PUT comes to what the disk and kernel allow.
 *
 *   durable-loop DEVICE_DIR THREADS SECONDS SIZE
 *
 * Each of THREADS threads, for SECONDS: open a new file in DEVICE/tmp
 * (O_CREAT|O_EXCL), posix_fallocate SIZE, write SIZE bytes, set the
 * `user.swift.metadata` xattr (a 250-byte pickle-sized value), fsync,
 * close; make the object's partition/suffix/hash directories that are
 * missing (a new hash directory per object, as for new names), rename the
 * file into its hash directory as <timestamp>.data, fsync that directory
 * and the parent of each directory it made. Prints one line:
 * `ops=N secs=S cpu=C p50_ms=A p99_ms=B` (cpu: user+sys seconds of the
 * process, from getrusage). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static const char *dev;
static size_t size;
static double secs;
static atomic_long seq;
static char *data;
static char meta[250];

#define MAX_SAMPLES 1000000
static double *lat;
static atomic_long nlat;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what, const char *path) {
    fprintf(stderr, "durable-loop: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void fsync_dir(const char *path) {
    int d = open(path, O_RDONLY | O_DIRECTORY);
    if (d < 0 || fsync(d) != 0) die("fsync dir", path);
    close(d);
}

/* mkdir each missing component of dir below the device; remember them. */
static int make_dirs(char *dir, char made[][512]) {
    int n = 0;
    struct stat st;
    if (stat(dir, &st) == 0) return 0;
    char *slash = strrchr(dir, '/');
    *slash = 0;
    n = make_dirs(dir, made);
    *slash = '/';
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) die("mkdir", dir);
    snprintf(made[n], 512, "%s", dir);
    return n + 1;
}

static void *worker(void *arg) {
    (void)arg;
    double end = now() + secs;
    char tmp[512], dir[512], dest[600], made[8][512];
    while (now() < end) {
        double t0 = now();
        long n = atomic_fetch_add(&seq, 1);
        unsigned long h = (unsigned long)n * 2654435761UL + 12345;
        snprintf(tmp, sizeof tmp, "%s/tmp/tmp%d.%ld", dev, getpid(), n);
        int fd = open(tmp, O_CREAT | O_EXCL | O_RDWR, 0644);
        if (fd < 0) die("open", tmp);
        if (posix_fallocate(fd, 0, (off_t)size) != 0) die("fallocate", tmp);
        if (write(fd, data, size) != (ssize_t)size) die("write", tmp);
        if (fsetxattr(fd, "user.swift.metadata", meta, sizeof meta, 0) != 0) die("xattr", tmp);
        if (fsync(fd) != 0) die("fsync", tmp);
        close(fd);
        snprintf(dir, sizeof dir, "%s/objects/%lu/%03lx/%016lx%016lx", dev, h % 1024, h % 4096, h, (unsigned long)n);
        int created = make_dirs(dir, made);
        snprintf(dest, sizeof dest, "%s/%ld.00000.data", dir, 1700000000L + n);
        if (rename(tmp, dest) != 0) die("rename", dest);
        fsync_dir(dir);
        for (int i = created - 1; i >= 0; i--) {
            char *slash = strrchr(made[i], '/');
            *slash = 0;
            fsync_dir(made[i]);
            *slash = '/';
        }
        long i = atomic_fetch_add(&nlat, 1);
        if (i < MAX_SAMPLES) lat[i] = now() - t0;
    }
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: durable-loop DEVICE_DIR THREADS SECONDS SIZE\n");
        return 2;
    }
    dev = argv[1];
    int threads = atoi(argv[2]);
    secs = atof(argv[3]);
    size = (size_t)atol(argv[4]);
    data = malloc(size);
    memset(data, 'x', size);
    memset(meta, 'm', sizeof meta);
    lat = calloc(MAX_SAMPLES, sizeof *lat);
    char t[512];
    snprintf(t, sizeof t, "%s/tmp", dev);
    mkdir(t, 0755);
    snprintf(t, sizeof t, "%s/objects", dev);
    mkdir(t, 0755);
    pthread_t ids[256];
    if (threads < 1 || threads > 256) return 2;
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&ids[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    double took = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    long n = atomic_load(&nlat);
    if (n > MAX_SAMPLES) n = MAX_SAMPLES;
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("ops=%ld secs=%.3f cpu=%.3f p50_ms=%.2f p99_ms=%.2f\n", n, took, cpu,
           n ? lat[n / 2] * 1e3 : 0, n ? lat[(long)(n * 0.99)] * 1e3 : 0);
    return 0;
}
