/* fsync_count.so: counts fsync and fdatasync calls of a process and its
 * threads, for bench/compare_durability.py. Loaded with LD_PRELOAD; the counts
 * live in the file named by FSYNC_COUNT_FILE (two little-endian int64s:
 * fdatasync calls, fsync calls), mapped shared, so a reader sees them live.
 * Used instead of strace because strace -f slowed the servers several times
 * over and lost threads on this machine. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static _Atomic long long *counts;

__attribute__((constructor)) static void fsync_count_init(void) {
    const char *path = getenv("FSYNC_COUNT_FILE");
    if (!path) return;
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return;
    if (ftruncate(fd, 16) == 0) {
        void *p = mmap(NULL, 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) counts = p;
    }
    close(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (counts) atomic_fetch_add(&counts[0], 1);
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    if (counts) atomic_fetch_add(&counts[1], 1);
    return real(fd);
}
