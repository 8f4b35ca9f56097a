/*
 * threads.c -- fastbmm's parallel regions and thread-count setting (see threads.h).
 */
#define _GNU_SOURCE
#include "threads.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#else
/* A build without OpenMP runs serially; the setting is still kept, so that
 * set_num_threads/get_num_threads behave alike in both builds. */
static int serial_icv = 1;
static int omp_get_max_threads(void) { return serial_icv; }
static void omp_set_num_threads(int n) { serial_icv = n; }
#endif

/* The calling thread's kernel id (cached; reset in a fork child). */
static __thread pid_t tl_tid = 0;

static pid_t current_tid(void)
{
#ifdef __linux__
    if (!tl_tid)
        tl_tid = (pid_t)syscall(SYS_gettid);
#endif
    return tl_tid;
}

/* --------------------------------------------------------------------------
 * The thread-count setting.
 *
 * OpenMP's ICV is per thread: omp_set_num_threads (and threadpoolctl, which
 * calls it) changes the calling thread's value only, and a new thread starts
 * from the process default. fastbmm.set_num_threads is process-wide: it bumps
 * a generation, and each thread applies the setting to its own ICV at its
 * next call. A thread whose ICV is no longer what fastbmm last applied has
 * been changed by someone else (threadpool_limits): that value is left alone
 * and used, and the setting is applied again once the ICV is back.
 */

static int g_default = 1;
static int g_setting = 0;
static long g_generation = 0;
static __thread long tl_generation = -1;   /* -1: not applied yet */
static __thread int tl_applied = 0;        /* ICV value fastbmm last applied here; 0: none */

int fbmm_threads_default(void) { return g_default; }
int fbmm_threads_setting(void) { return __atomic_load_n(&g_setting, __ATOMIC_RELAXED); }
int fbmm_threads_applied(void) { return tl_applied; }

void fbmm_threads_set(int n)
{
    __atomic_store_n(&g_setting, n, __ATOMIC_RELAXED);
    long gen = __atomic_add_fetch(&g_generation, 1, __ATOMIC_RELEASE);
    int target = n > 0 ? n : g_default;
    omp_set_num_threads(target);
    tl_applied = target;
    tl_generation = gen;
}

int fbmm_threads_current(void)
{
    long gen = __atomic_load_n(&g_generation, __ATOMIC_ACQUIRE);
    if (gen != 0 && tl_generation != gen) {
        int icv = omp_get_max_threads();
        int expected = tl_applied ? tl_applied : g_default;
        if (icv == expected) {
            int setting = __atomic_load_n(&g_setting, __ATOMIC_RELAXED);
            int target = setting > 0 ? setting : g_default;
            if (target != icv)
                omp_set_num_threads(target);
            tl_applied = target;
            tl_generation = gen;
        }
    }
    return omp_get_max_threads();
}

void fbmm_threads_restore(int setting, int icv, int applied)
{
    __atomic_store_n(&g_setting, setting, __ATOMIC_RELAXED);
    __atomic_add_fetch(&g_generation, 1, __ATOMIC_RELEASE);
    omp_set_num_threads(icv);
    tl_applied = applied;
    tl_generation = -1;     /* checked again at the next call */
}

/* --------------------------------------------------------------------------
 * CPUs and the cap */

static int g_cpus = 1;

static int count_cpus(void)
{
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int fbmm_available_cpus(void) { return g_cpus; }

int fbmm_threads_cap(void)
{
    int cap = FBMM_THREADS_PER_CPU * g_cpus;
    return cap > FBMM_MIN_THREAD_CAP ? cap : FBMM_MIN_THREAD_CAP;
}

/* --------------------------------------------------------------------------
 * CPUs other processes leave free
 *
 * A team member whose CPU is taken by another process runs in slices of that
 * CPU: the team waits for it at the end (an OpenMP region always ends in a
 * barrier), up to a scheduler slice per call. So a call starts no more
 * threads than there are CPUs without a runnable thread of another process:
 * the kernel's count of runnable threads (/proc/loadavg, 4th field) less this
 * process's own (/proc/self/task/<tid>/stat): libgomp's workers spin for a
 * while after a region (8 ms on a Zen 3), runnable but no competitors.
 *
 * This process's other runnable threads do compete, and the worst of them
 * spin: OpenBLAS's workers (numpy.matmul's) spin 2^28 cycles, about 0.1 s,
 * after each call. With one of them on a CPU, a 2-thread team waited for its
 * member there: 64x128x128x64 float32 right after a numpy.matmul took 6 ms on
 * 2 threads against 1 ms alone and 2 ms on 1 thread. So the threads fastbmm's
 * regions have run on (its libgomp workers and the fork helper) are recorded,
 * and any other runnable thread of this process but the caller is counted as
 * a competitor.
 */

static int g_online = 1;
static int g_follow_load = 1;
/* A reading is a read of /proc/loadavg and of each thread's stat: 50-70 us
 * on a KVM guest with 3 threads when each file was opened, read and closed,
 * 15-20 us with the files kept open (below); a few us on bare metal. Read
 * anew each 1 ms, the first took 5% of back-to-back 1 ms calls on 2
 * threads; so the interval is FBMM_RUNQUEUE_COST_RATIO times the last
 * reading's cost (about 3%), within 1-8 ms (a reading preempted midway
 * must not leave the count stale for long). */
#define FBMM_RUNQUEUE_MIN_INTERVAL_NS 1000000
#define FBMM_RUNQUEUE_MAX_INTERVAL_NS 8000000
#define FBMM_RUNQUEUE_COST_RATIO 32
static int64_t g_others_at_ns = -1;
static int64_t g_others_interval_ns = FBMM_RUNQUEUE_MIN_INTERVAL_NS;
static int g_others = 0;
static int g_last_reading = 0;

static int64_t now_ns(void);

void fbmm_threads_follow_load(int on) { g_follow_load = on; }

#ifdef __linux__
/* The text of a small /proc file, NUL-terminated; 0 if unreadable. */
static int read_proc(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t len = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[len] = 0;
    return len > 0;
}

/* The threads fastbmm's regions run on, but the callers: libgomp's workers
 * and the fork helper. A full table leaves the rest unrecorded: they count
 * as competitors when they spin, which only starts smaller teams. */
#define FBMM_MAX_TEAM_TIDS 256
static pid_t g_team_tids[FBMM_MAX_TEAM_TIDS];
static int g_team_tid_count = 0;
static __thread int tl_recorded = 0;

static void record_team_thread(void)
{
    if (tl_recorded)
        return;
    tl_recorded = 1;
    int i = __atomic_fetch_add(&g_team_tid_count, 1, __ATOMIC_RELAXED);
    if (i < FBMM_MAX_TEAM_TIDS)
        __atomic_store_n(&g_team_tids[i], current_tid(), __ATOMIC_RELEASE);
}

static int is_team_thread(pid_t tid)
{
    int n = __atomic_load_n(&g_team_tid_count, __ATOMIC_ACQUIRE);
    if (n > FBMM_MAX_TEAM_TIDS)
        n = FBMM_MAX_TEAM_TIDS;
    for (int i = 0; i < n; i++)
        if (__atomic_load_n(&g_team_tids[i], __ATOMIC_ACQUIRE) == tid)
            return 1;
    return 0;
}

/* /proc files kept open between readings: a pread is 2-4 us where an open,
 * read and close is 7-11 us on a KVM guest. The process may close a
 * descriptor it does not own and reuse its number, so each is checked by
 * device and inode before a read (and before a close). */
typedef struct {
    pid_t tid;      /* the thread of a stat file; 0 for /proc/loadavg */
    int fd;         /* -1: not open */
    dev_t dev;
    ino_t ino;
} kept_file;

#define FBMM_MAX_KEPT_THREADS 64
#define FBMM_THREAD_LIST_NS 10000000    /* list this process's threads again after 10 ms */
static pthread_mutex_t g_proc_mu = PTHREAD_MUTEX_INITIALIZER;   /* guards the kept files */
static kept_file g_loadavg = {0, -1, 0, 0};
static kept_file g_kept[FBMM_MAX_KEPT_THREADS];
static int g_nkept = 0;
static int g_too_many_threads = 0;      /* more threads than kept files: open each */
static int64_t g_listed_at_ns = -1;

static int open_kept(const char *path, pid_t tid, kept_file *f)
{
    f->tid = tid;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (f->fd < 0)
        return 0;
    if (fstat(f->fd, &st) != 0) {
        close(f->fd);
        f->fd = -1;
        return 0;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return 1;
}

/* Whether f's descriptor is still the file it was opened on. */
static int kept_is_ours(const kept_file *f)
{
    struct stat st;
    return f->fd >= 0 && fstat(f->fd, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino;
}

static void close_kept(kept_file *f)
{
    if (kept_is_ours(f))
        close(f->fd);
    f->fd = -1;
}

/* The text of a kept file, NUL-terminated; 0 if it is gone (closed). */
static int read_kept(kept_file *f, char *buf, size_t size)
{
    if (!kept_is_ours(f)) {
        f->fd = -1;         /* someone else's now: not ours to close */
        return 0;
    }
    ssize_t len = pread(f->fd, buf, size - 1, 0);
    if (len <= 0) {         /* the thread has ended */
        close(f->fd);
        f->fd = -1;
        return 0;
    }
    buf[len] = 0;
    return 1;
}

static int list_threads(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return 0;
    pid_t seen[FBMM_MAX_KEPT_THREADS];
    int nseen = 0;
    g_too_many_threads = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (nseen == FBMM_MAX_KEPT_THREADS) {
            g_too_many_threads = 1;
            break;
        }
        seen[nseen++] = (pid_t)strtol(e->d_name, NULL, 10);
    }
    closedir(dir);
    /* keep the files of the threads still listed, close the others */
    int n = 0;
    for (int i = 0; i < g_nkept; i++) {
        int listed = 0;
        for (int j = 0; j < nseen && !listed; j++)
            listed = seen[j] == g_kept[i].tid;
        if (listed && g_kept[i].fd >= 0)
            g_kept[n++] = g_kept[i];
        else
            close_kept(&g_kept[i]);
    }
    g_nkept = n;
    for (int j = 0; j < nseen; j++) {
        int kept = 0;
        for (int i = 0; i < g_nkept && !kept; i++)
            kept = g_kept[i].tid == seen[j];
        if (kept)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)seen[j]);
        if (open_kept(path, seen[j], &g_kept[g_nkept]))
            g_nkept++;
    }
    g_listed_at_ns = now_ns();
    return 1;
}

/* Whether a thread's stat text says it is runnable (the state follows the
 * name, which may hold spaces and ')'). */
static int stat_says_runnable(const char *buf)
{
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'R';
}

/* Counts a thread whose stat text is `stat` into *n if runnable, and into
 * *competing if it is also neither the caller nor one of fastbmm's. */
static void tally_thread(pid_t tid, const char *stat, pid_t self, int *n, int *competing)
{
    if (!stat_says_runnable(stat))
        return;
    ++*n;
    if (tid != self && !is_team_thread(tid))
        ++*competing;
}

/* This process's runnable threads (at least 1: the caller); *competing: those
 * of them neither the caller nor a thread of fastbmm's regions. Called with
 * g_proc_mu held. */
static int own_runnable_threads(int *competing)
{
    *competing = 0;
    if ((g_listed_at_ns < 0 || now_ns() - g_listed_at_ns >= FBMM_THREAD_LIST_NS) &&
        !list_threads())
        return 1;
    const pid_t self = current_tid();
    int n = 0;
    char buf[512];
    if (g_too_many_threads) {
        /* more threads than kept files: each one's stat opened and read */
        DIR *dir = opendir("/proc/self/task");
        if (!dir)
            return 1;
        struct dirent *e;
        char path[64];
        while ((e = readdir(dir)) != NULL) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
            if (read_proc(path, buf, sizeof buf))
                tally_thread((pid_t)strtol(e->d_name, NULL, 10), buf, self, &n, competing);
        }
        closedir(dir);
        return n > 0 ? n : 1;
    }
    for (int i = 0; i < g_nkept; i++) {
        if (read_kept(&g_kept[i], buf, sizeof buf))
            tally_thread(g_kept[i].tid, buf, self, &n, competing);
        else
            g_listed_at_ns = -1;        /* a thread has ended: list them again next time */
    }
    return n > 0 ? n : 1;
}

/* /proc/loadavg's runnable count (4th field, "3" in "0.50 0.40 0.30 3/120
 * 4567"); -1 if unreadable. Called with g_proc_mu held. */
static int runnable_in_system(void)
{
    char buf[128];
    if (!read_kept(&g_loadavg, buf, sizeof buf)) {
        if (!open_kept("/proc/loadavg", 0, &g_loadavg) || !read_kept(&g_loadavg, buf, sizeof buf))
            return -1;
    }
    char *slash = strchr(buf, '/');
    if (!slash)
        return -1;
    char *p = slash;
    while (p > buf && p[-1] != ' ')
        p--;
    return (int)strtol(p, NULL, 10);
}

/* In a fork child: the kept thread files are the parent's threads'. */
static void forget_kept_files(void)
{
    pthread_mutex_init(&g_proc_mu, NULL);
    for (int i = 0; i < g_nkept; i++)
        close_kept(&g_kept[i]);
    g_nkept = 0;
    g_listed_at_ns = -1;
}

/* Runnable threads of other processes; -1 if unknown. */
static int others_runnable(void)
{
    int64_t now = now_ns();
    int64_t at = __atomic_load_n(&g_others_at_ns, __ATOMIC_ACQUIRE);
    if (at >= 0 && now - at < __atomic_load_n(&g_others_interval_ns, __ATOMIC_RELAXED))
        return __atomic_load_n(&g_others, __ATOMIC_RELAXED);
    /* another thread is reading: its reading will do */
    if (pthread_mutex_trylock(&g_proc_mu) != 0)
        return __atomic_load_n(&g_others, __ATOMIC_RELAXED);
    /* This process's own threads first, then loadavg. Between calls our
     * workers only go from spinning (runnable) to sleeping, never back, so
     * counting them first can only count one of them twice, never a worker
     * as a competitor. (The other order read a worker of the last region as
     * runnable in loadavg and asleep a moment later: on a quiet machine it
     * looked like a competitor, and with the two-reading rule below the
     * default team was often one thread: 64x128x128x64 ran 1.10x faster on
     * 2 threads than on 1, against 1.79x with the full team.) A competitor
     * missed once this way is caught by the two-reading rule. */
    int competing_own;
    const int own = own_runnable_threads(&competing_own);
    const int total = runnable_in_system();
    pthread_mutex_unlock(&g_proc_mu);
    if (total < 0)
        return -1;
    int others = total - own;
    if (others < 0)
        others = 0;
    others += competing_own;
    /* the larger of the last two readings: a competitor missed by one
     * snapshot (the two counts are not taken at the same instant) does not
     * start a team that would wait for it */
    int previous = __atomic_exchange_n(&g_last_reading, others, __ATOMIC_RELAXED);
    int result = others > previous ? others : previous;
    __atomic_store_n(&g_others, result, __ATOMIC_RELAXED);
    int64_t interval = FBMM_RUNQUEUE_COST_RATIO * (now_ns() - now);
    if (interval < FBMM_RUNQUEUE_MIN_INTERVAL_NS)
        interval = FBMM_RUNQUEUE_MIN_INTERVAL_NS;
    if (interval > FBMM_RUNQUEUE_MAX_INTERVAL_NS)
        interval = FBMM_RUNQUEUE_MAX_INTERVAL_NS;
    __atomic_store_n(&g_others_interval_ns, interval, __ATOMIC_RELAXED);
    __atomic_store_n(&g_others_at_ns, now, __ATOMIC_RELEASE);
    return result;
}

int fbmm_competing_threads_of_process(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -1;
    closedir(dir);
    int competing;
    pthread_mutex_lock(&g_proc_mu);
    own_runnable_threads(&competing);
    pthread_mutex_unlock(&g_proc_mu);
    return competing;
}
#else
static void record_team_thread(void) {}
static int others_runnable(void) { return -1; }
int fbmm_competing_threads_of_process(void) { return -1; }
#endif

int fbmm_threads_free_cpus(int want)
{
    if (want <= 1 || !g_follow_load)
        return want;
    int others = others_runnable();
    if (others < 0)
        return want;
    int free_cpus = g_online - others;
    if (free_cpus < 1)
        free_cpus = 1;
    return want < free_cpus ? want : free_cpus;
}

/* --------------------------------------------------------------------------
 * fork
 *
 * In a child of fork() only the thread that forked exists. If the parent had
 * other threads, some of them may have been that thread's libgomp pool: its
 * next parallel region would wait for them forever. Threads created in the
 * child start with no pool and are safe; the forking thread is the child's
 * initial thread (its tid is the pid). When the runtime was loaded before
 * fastbmm, nothing tells whether the process is such a child: the initial
 * thread is treated as one.
 */

static int g_fork_state = 0;
static int g_threads_at_fork = 1;

static int process_threads(void)
{
#ifdef __linux__
    /* field 20 of /proc/self/stat; the name (field 2) may hold spaces and ')' */
    char buf[1024];
    char *p = read_proc("/proc/self/stat", buf, sizeof buf) ? strrchr(buf, ')') : NULL;
    int field = 2;
    long threads = 2;   /* unknown: assume a pool may exist */
    for (; p && *p; p++) {
        if (*p == ' ' && ++field == 20) {
            threads = strtol(p + 1, NULL, 10);
            break;
        }
    }
    return threads > 0 ? (int)threads : 2;
#else
    return 2;
#endif
}

int fbmm_fork_state(void) { return g_fork_state; }

int fbmm_delegates_regions(void)
{
#ifdef __linux__
    if (!g_fork_state)
        return 0;
    return current_tid() == getpid();
#else
    return 0;
#endif
}

/* The helper thread that runs the initial thread's regions in a fork child. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, pending, done;
    const fbmm_engine *eng;
    const fbmm_problem *P;
    int nthreads;
    char *base;
    size_t per_thread;
} helper = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL, NULL, 0, NULL, 0};

static __thread int tl_team_max = 1;

static void before_fork(void) { g_threads_at_fork = process_threads(); }

static void after_fork_in_child(void)
{
    if (g_threads_at_fork > 1)
        g_fork_state = 1;
    /* the helper thread, if any, was not copied; its lock may have been held */
    pthread_mutex_init(&helper.mu, NULL);
    pthread_cond_init(&helper.cv, NULL);
    helper.started = helper.pending = helper.done = 0;
    tl_tid = 0;
    tl_team_max = 1;
#ifdef __linux__
    /* the parent's threads are not this process's */
    g_team_tid_count = 0;
    tl_recorded = 0;
    forget_kept_files();
#endif
    g_cpus = count_cpus();
}

static void *read_default_icv(void *out)
{
    *(int *)out = omp_get_max_threads();
    return NULL;
}

void fbmm_threads_init(int runtime_preloaded)
{
    /* The calling thread's ICV may be limited already (threadpool_limits
     * around the import): a new thread sees the process default. */
    pthread_t th;
    int value = 0;
    if (pthread_create(&th, NULL, read_default_icv, &value) == 0)
        pthread_join(th, NULL);
    g_default = value > 0 ? value : omp_get_max_threads();
    g_cpus = count_cpus();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    g_online = online > 0 ? (int)online : g_cpus;
    g_fork_state = runtime_preloaded ? 2 : 0;
    pthread_atfork(before_fork, NULL, after_fork_in_child);
}

/* --------------------------------------------------------------------------
 * Probing thread creation */

/* libgomp's worker stack size: OMP_STACKSIZE, else GOMP_STACKSIZE, as
 * "<number>[B|K|M|G]" with K the default unit; 0: the pthread default. */
static size_t omp_stacksize(void)
{
    const char *names[] = {"OMP_STACKSIZE", "GOMP_STACKSIZE"};
    for (int i = 0; i < 2; i++) {
        const char *s = getenv(names[i]);
        if (!s)
            continue;
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s)
            continue;
        while (*end == ' ')
            end++;
        unsigned long long unit = 1024;
        switch (*end) {
        case 'b': case 'B': unit = 1; break;
        case 'm': case 'M': unit = 1024ull * 1024; break;
        case 'g': case 'G': unit = 1024ull * 1024 * 1024; break;
        default: break;
        }
        return (size_t)(v * unit);
    }
    return 0;
}

static void *probe_main(void *gate)
{
    pthread_mutex_lock((pthread_mutex_t *)gate);
    pthread_mutex_unlock((pthread_mutex_t *)gate);
    return NULL;
}

int fbmm_probe_threads(int nthreads, int *created)
{
    *created = nthreads;
    if (nthreads <= tl_team_max)
        return 0;
    pthread_t *ids = malloc(sizeof(pthread_t) * (size_t)(nthreads - 1));
    if (!ids) {
        *created = 1;
        return ENOMEM;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    size_t stack = omp_stacksize();
    if (stack)
        pthread_attr_setstacksize(&attr, stack);
    /* all of them alive at once, as libgomp's team will be: they wait at the gate */
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&gate);
    int i, err = 0;
    for (i = 0; i < nthreads - 1; i++) {
        err = pthread_create(&ids[i], &attr, probe_main, &gate);
        if (err)
            break;
    }
    pthread_mutex_unlock(&gate);
    for (int j = 0; j < i; j++)
        pthread_join(ids[j], NULL);
    pthread_attr_destroy(&attr);
    pthread_mutex_destroy(&gate);
    free(ids);
    *created = i + 1;
    if (!err)
        tl_team_max = nthreads;
    return err;
}

/* --------------------------------------------------------------------------
 * The parallel region */

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* How long a thread with nothing left to do spins before it sleeps. Short:
 * a late thread may be waiting for this very core. */
#define FBMM_SPIN_NS 20000

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#ifdef _OPENMP
static void sleep_while_equal(int *addr, int value)
{
#ifdef __linux__
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
#else
    (void)addr;
    (void)value;
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
#endif
}

static void wake_all(int *addr)
{
#ifdef __linux__
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

/* Wait until all `team` threads have arrived. Ends with every thread awake,
 * so that OpenMP's own barrier after it (which spins) is passed at once. */
static void arrive_and_wait(int *arrived, int *sleeping, int team)
{
    int n = __atomic_add_fetch(arrived, 1, __ATOMIC_SEQ_CST);
    if (n == team) {
        if (__atomic_load_n(sleeping, __ATOMIC_SEQ_CST))
            wake_all(arrived);
        return;
    }
    const int64_t until = now_ns() + FBMM_SPIN_NS;
    for (int i = 1;; i++) {
        if (__atomic_load_n(arrived, __ATOMIC_ACQUIRE) == team)
            return;
        cpu_relax();
        if ((i & 63) == 0 && now_ns() > until)
            break;
    }
    for (;;) {
        /* Dekker with the last arriver: it adds, then reads `sleeping`;
         * this sets `sleeping`, then reads `arrived` (all sequentially consistent) */
        __atomic_store_n(sleeping, 1, __ATOMIC_SEQ_CST);
        int v = __atomic_load_n(arrived, __ATOMIC_SEQ_CST);
        if (v == team)
            return;
        sleep_while_equal(arrived, v);
    }
}

#endif

static void run_team(const fbmm_engine *eng, const fbmm_problem *P, int nthreads, char *base,
                     size_t per_thread)
{
    const int64_t ntasks = P->ntasks;
#ifdef _OPENMP
    int64_t next = 0;
    int arrived = 0, sleeping = 0;
    /* Tasks are claimed one by one (no static share): a thread that starts
     * late, or is preempted, holds at most the task it is running. */
#pragma omp parallel num_threads(nthreads)
    {
        if (omp_get_thread_num() != 0)
            record_team_thread();
        char *scratch = per_thread ? base + (size_t)omp_get_thread_num() * per_thread : NULL;
        int64_t t;
        while ((t = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED)) < ntasks)
            eng->run_task(P, t, scratch);
        if (omp_get_num_threads() > 1)
            arrive_and_wait(&arrived, &sleeping, omp_get_num_threads());
    }
#else
    (void)nthreads;
    (void)per_thread;
    for (int64_t t = 0; t < ntasks; t++)
        eng->run_task(P, t, base);
#endif
}

/* Spin briefly on *flag (set by another thread), then sleep on the helper's condition. */
static void wait_for_flag(int *flag)
{
    const int64_t until = now_ns() + FBMM_SPIN_NS;
    for (int i = 1; !__atomic_load_n(flag, __ATOMIC_ACQUIRE); i++) {
        cpu_relax();
        if ((i & 63) == 0 && now_ns() > until) {
            pthread_mutex_lock(&helper.mu);
            while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE))
                pthread_cond_wait(&helper.cv, &helper.mu);
            pthread_mutex_unlock(&helper.mu);
            return;
        }
    }
}

/* Set *flag and wake the other side, under the lock (so that a sleeper
 * cannot miss it between its check and its wait). */
static void raise_flag(int *flag)
{
    pthread_mutex_lock(&helper.mu);
    __atomic_store_n(flag, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&helper.cv);
    pthread_mutex_unlock(&helper.mu);
}

static void *helper_main(void *unused)
{
    (void)unused;
    record_team_thread();
    for (;;) {
        wait_for_flag(&helper.pending);
        __atomic_store_n(&helper.pending, 0, __ATOMIC_RELAXED);
        run_team(helper.eng, helper.P, helper.nthreads, helper.base, helper.per_thread);
        raise_flag(&helper.done);
    }
    return NULL;
}

static int run_on_helper(const fbmm_engine *eng, const fbmm_problem *P, int nthreads, char *base,
                         size_t per_thread)
{
    if (!helper.started) {
        /* no signals for the helper and its OpenMP workers: Python's handlers
         * belong to the main thread */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_t th;
        int err = pthread_create(&th, NULL, helper_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (err)
            return err;
        pthread_detach(th);
        helper.started = 1;
    }
    /* Only the initial thread comes here, one call at a time. */
    helper.eng = eng;
    helper.P = P;
    helper.nthreads = nthreads;
    helper.base = base;
    helper.per_thread = per_thread;
    __atomic_store_n(&helper.done, 0, __ATOMIC_RELAXED);
    raise_flag(&helper.pending);
    wait_for_flag(&helper.done);
    return 0;
}

int fbmm_run_tasks(const fbmm_engine *eng, const fbmm_problem *P, int nthreads, char *base,
                   size_t per_thread)
{
    if (nthreads <= 1) {
        for (int64_t t = 0; t < P->ntasks; t++)
            eng->run_task(P, t, base);
        return 0;
    }
    if (fbmm_delegates_regions())
        return run_on_helper(eng, P, nthreads, base, per_thread);
    run_team(eng, P, nthreads, base, per_thread);
    return 0;
}
