/*
 * threads.h -- how fastbmm starts, sizes and ends its OpenMP parallel regions.
 *
 * Four traps of GNU OpenMP (libgomp) are handled here, in C, because they
 * need thread-local state, fork handlers and atomics:
 *
 *  - The thread count is OpenMP's own per-thread setting (the ICV that
 *    omp_set_num_threads and threadpoolctl change), kept in step with
 *    fastbmm.set_num_threads' process-wide value (fbmm_threads_*).
 *  - libgomp's worker pool does not survive fork(): the thread that forked
 *    keeps a pool whose threads do not exist in the child, and its next
 *    parallel region waits for them forever. Such a thread hands its regions
 *    to a helper thread started in the child (fbmm_run_tasks).
 *  - libgomp calls exit(1) when it cannot create a thread: a larger team than
 *    the calling thread has had is tried with plain pthreads first
 *    (fbmm_probe_threads), so that a failure is an error code, not an exit.
 *  - A thread that is late (its core is taken by another process) must not
 *    hold work or make the others spin: tasks are claimed one at a time from
 *    an atomic counter, and a thread with nothing left sleeps (after a short
 *    spin) until the team is done, so that its core is free for the late one.
 */
#ifndef FASTBMM_THREADS_H
#define FASTBMM_THREADS_H

#include "fastbmm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* At import. runtime_preloaded: the OpenMP runtime was mapped before fastbmm
 * was imported (it may carry a pool inherited through an earlier fork). */
void fbmm_threads_init(int runtime_preloaded);

/* The process default: OMP_NUM_THREADS, or the CPUs (what a new thread gets). */
int fbmm_threads_default(void);
/* fastbmm.set_num_threads: n > 0, or 0 for the default. */
void fbmm_threads_set(int n);
/* The process-wide setting (0: the default). */
int fbmm_threads_setting(void);
/* The calling thread's thread count for its next call, after applying the
 * process-wide setting to its OpenMP ICV (unless something else, e.g.
 * threadpoolctl, has changed that ICV since: then that wins). */
int fbmm_threads_current(void);
/* Restore what fastbmm.threads() saved: the setting, and this thread's ICV. */
void fbmm_threads_restore(int setting, int icv, int applied);
/* The ICV value fastbmm last applied to the calling thread (0: none). */
int fbmm_threads_applied(void);

/* Most threads one call starts: FBMM_THREADS_PER_CPU per CPU of the affinity
 * mask read at import (and after fork), at least FBMM_MIN_THREAD_CAP. */
int fbmm_threads_cap(void);
int fbmm_available_cpus(void);
#define FBMM_THREADS_PER_CPU 4
#define FBMM_MIN_THREAD_CAP 8

/* want, or fewer: the CPUs that no other runnable thread takes (see threads.c). */
int fbmm_threads_free_cpus(int want);
/* 0: always the full team (for tests that need a team on a loaded machine). */
void fbmm_threads_follow_load(int on);
/* This process's runnable threads now, but the caller and the threads
 * fastbmm's regions run on (read afresh, for tests); -1 if unknown. */
int fbmm_competing_threads_of_process(void);

/* 0: the calling thread runs its own regions; 1: this process was forked
 * from one with several threads, 2: the OpenMP runtime was loaded before
 * fastbmm: the initial thread hands its regions to a helper thread. */
int fbmm_fork_state(void);
/* The calling thread's regions go through the helper thread. */
int fbmm_delegates_regions(void);

/* Whether nthreads - 1 threads can be created at once (with libgomp's stack
 * size); 0 or an errno. *created: how many could. Not repeated for a team no
 * larger than the calling thread has already had. */
int fbmm_probe_threads(int nthreads, int *created);

/* Run tasks 0 .. P->ntasks - 1 of a planned problem on nthreads threads,
 * thread i with scratch base + i * per_thread. 0, or an errno when a thread
 * could not be started (nothing has run then). */
int fbmm_run_tasks(const fbmm_engine *eng, const fbmm_problem *P, int nthreads,
                   char *base, size_t per_thread);

#ifdef __cplusplus
}
#endif
#endif
