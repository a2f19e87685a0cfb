# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""One machine's events, compiled: ``traces.synth`` made with numpy's C random API.

In: the machine's fresh ``numpy.random.Generator`` (its bit generator is drawn from directly,
through its ``bitgen_t``) and the ``SynthParams``. Out (``machine``): the events as an int64
array in ``traces.synth``'s packed format (8 values per event, emission order) and the list of
names, the same as ``traces.synth.machine_start`` and ``traces.synth.pods`` make. Also the
table's columns (``sorted_columns``, ``take_names``), as ``traces.generate`` builds them, and a
replay shard's batch of them (``batch_columns``), as ``traces.generate.batch_columns`` makes it.

Every function mirrors its namesake in ``traces/synth.py`` line for line: the same draws in the
same order, each through the C function numpy's ``Generator`` method calls (``integers`` ->
``random_bounded_uint64`` with Lemire's rejection, ``random`` -> ``random_standard_uniform``,
``uniform`` / ``lognormal`` / ``exponential`` / ``poisson`` -> ``random_uniform`` /
``random_lognormal`` / ``random_exponential`` / ``random_poisson``), the same float operations in
the same order (a cumulative sum adds left to right, as ``np.cumsum``), and ``int()`` as a C
truncation. A float too large for an int64 raises OverflowError (``traces.generate.machine_events``
then reruns the machine pure). ``tests/test_generate.py`` compares both builds event for event.
"""

cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.pycapsule cimport PyCapsule_GetContext, PyCapsule_GetPointer, PyCapsule_New, PyCapsule_SetContext
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.math cimport rint
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

cimport numpy as cnp
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport (random_bounded_uint64, random_exponential, random_lognormal,
                                           random_poisson, random_standard_uniform, random_uniform)

import math

import numpy as np

from core.ops import Flag, Op
from traces import synth

cnp.import_array()

cdef int64_t SEC = 1_000_000
cdef double POISSON_LAM_MAX = np.iinfo("l").max - np.sqrt(np.iinfo("l").max) * 10  # as numpy's Generator
cdef int64_t NEVER = 1 << 62
cdef Py_ssize_t MAX_ACCESSES = synth._MAX_ACCESSES

cdef int64_t SWAP_ON = Op.SWAP_ON, MKDIR = Op.MKDIR, RMDIR = Op.RMDIR, SET_LIMIT = Op.SET_LIMIT
cdef int64_t TASK_START = Op.TASK_START, TASK_EXIT = Op.TASK_EXIT
cdef int64_t FILE_CREATE = Op.FILE_CREATE, FILE_DELETE = Op.FILE_DELETE, FILE_READ = Op.FILE_READ
cdef int64_t FILE_WRITE = Op.FILE_WRITE, FILE_MAP = Op.FILE_MAP, FILE_UNMAP = Op.FILE_UNMAP
cdef int64_t ANON_ALLOC = Op.ANON_ALLOC, ANON_FREE = Op.ANON_FREE, PIN = Op.PIN, UNPIN = Op.UNPIN
cdef int64_t KMEM_ALLOC = Op.KMEM_ALLOC, KMEM_FREE = Op.KMEM_FREE
cdef int64_t SOCK_OPEN = Op.SOCK_OPEN, SOCK_CLOSE = Op.SOCK_CLOSE
cdef int64_t F_NONE = Flag.NONE, F_SHMEM = Flag.SHMEM, F_MAX = Flag.MAX, F_MLOCK = Flag.MLOCK
cdef int64_t F_PAGE = Flag.PAGE, F_SLAB = Flag.SLAB


def machine(rng, p):
    """``traces.synth.machine_start`` then ``traces.synth.pods``, compiled: (events, names).

    In: the machine's fresh ``Generator`` and the parameters. Out: the machine's packed events as
    an int64 array that owns the buffer they were written to, and its list of names. A parameter
    numpy would reject, or a value an int64 cannot hold, raises OverflowError (the caller reruns
    the machine pure, which raises numpy's own error if there is one).
    """
    cdef bitgen_t* bg = <bitgen_t*>PyCapsule_GetPointer(rng.bit_generator.capsule, "BitGenerator")
    cdef Py_ssize_t n_files = p.shared_files, n_pods, i
    cdef double sigma = p.shared_file_bytes_sigma, mu, low, high, span, lam
    if not (sigma >= 0 and p.pod_lifetime_sigma >= 0):
        raise OverflowError("a negative sigma: numpy's lognormal rejects it, the pure generator says so")
    # synth._machine_setup: the shared files' sizes, names and choice weights
    mu = math.log(max(p.shared_file_bytes_median, 4096))
    sizes = [_pages_of(random_lognormal(bg, mu, sigma)) for i in range(n_files)]
    names = list(synth._layer_names(n_files))
    weights, cdf = synth._zipf(n_files, p.shared_zipf_s)
    cdef _Gen g = _Gen(rng, p, list(range(n_files)), sizes, weights, cdf, names)
    if p.swap_bytes > 0:
        g.put(0, SWAP_ON, -1, -1, -1, -1, p.swap_bytes, 0)
    for i in range(n_files):
        g.put(0, FILE_CREATE, -1, -1, i, -1, sizes[i], 0)
    # synth.machine_start: the pod count, their arrival times (sorted) and lifetimes, as numpy draws them
    lam = p.pod_arrival_per_s * p.duration_s
    if not (0 <= lam <= POISSON_LAM_MAX):
        raise OverflowError("a pod rate numpy's poisson rejects: the pure generator says so")
    n_pods = random_poisson(bg, lam)
    low, high = 0.0, p.duration_s
    span = high - low
    if not (-1e308 < span < 1e308):
        raise OverflowError("Range exceeds valid bounds")
    arrivals = np.empty(n_pods, dtype=np.float64)
    cdef double[::1] at = arrivals
    for i in range(n_pods):
        at[i] = random_uniform(bg, low, span)
    arrivals.sort()
    mu, sigma = math.log(p.pod_lifetime_median_s), p.pod_lifetime_sigma
    lifetimes = np.empty(n_pods, dtype=np.float64)  # every lifetime is drawn before any pod's draws
    cdef double[::1] life = lifetimes
    for i in range(n_pods):
        life[i] = random_lognormal(bg, mu, sigma)
        if not (life[i] >= 1.0 or life[i] != life[i]):  # np.maximum(life, 1.0): NaN stays NaN
            life[i] = 1.0
    cdef int64_t start
    for i in range(n_pods):
        start = _trunc(at[i] * <double>SEC) + 1  # t=0 belongs to the machine setup
        g.pod(i, start, start + _trunc(life[i] * <double>SEC))
    return g.result(), names


# One events buffer given back by a machine's array (``_free_buffer``), kept for the next machine's
# ``_Gen``: a buffer of a few MiB is a fresh mmap each time, and faulting its pages in (and those
# of each doubling) cost about half the generator's time on a cell's machines. Up to KEEP_MAX
# values (8 MiB) are kept: at most one buffer, the larger one, per process.
cdef int64_t* _kept = NULL
cdef Py_ssize_t _kept_cap = 0
cdef Py_ssize_t KEEP_MAX = 1 << 20


cdef void _free_buffer(object capsule) noexcept:
    # the capsule's destructor (the array is gone): keep the buffer for the next machine, or free it
    global _kept, _kept_cap
    cdef int64_t* buf = <int64_t*>PyCapsule_GetPointer(capsule, NULL)
    cdef Py_ssize_t cap = <Py_ssize_t><size_t>PyCapsule_GetContext(capsule)
    if cap > KEEP_MAX or (_kept != NULL and cap <= _kept_cap):
        PyMem_Free(buf)
        return
    PyMem_Free(_kept)
    _kept, _kept_cap = buf, cap


cdef inline int64_t _trunc(double x) except? -1:
    # int(x) for a float: truncation toward zero, and an error where an int64 cannot hold it
    if not (-9.2e18 < x < 9.2e18):
        raise OverflowError(f"{x!r} does not fit an int64")
    return <int64_t>x


cdef inline int64_t _pages_of(double x) except? -1:
    # max(round(x / 4096), 1) * 4096: round half to even, as Python's round() and rint() both do
    cdef double r = rint(x / 4096.0)
    if not (r < 2.0e15):
        raise OverflowError(f"{x!r} bytes do not fit an int64")
    return (<int64_t>r if r >= 1.0 else 1) * 4096


cdef inline Py_ssize_t _searchsorted_right(const double* cdf, Py_ssize_t n, double x) noexcept:
    # how many of the sorted cdf are <= x: numpy's searchsorted(x, side="right")
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if cdf[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef void _sort(int64_t* a, Py_ssize_t n) noexcept:
    # insertion sort: n is at most a few hundred, and the values, not their order of ties, matter
    cdef Py_ssize_t i, j
    cdef int64_t v
    for i in range(1, n):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


cdef class _Gen:
    """One machine's pod generator: the bit generator, the parameters as C values, the event buffer."""

    cdef bitgen_t* bg
    cdef object rng, capsule, weights_obj, cdf_obj
    cdef list names, file_ids, file_sizes
    cdef const double* cdf
    cdef const double* weights
    cdef int64_t* buf
    cdef Py_ssize_t n, cap, n_files, k
    # scratch arrays, sized once from the parameters
    cdef int64_t* chosen
    cdef int64_t* pod_obj
    cdef int64_t* pod_size
    cdef int64_t* pod_pages
    cdef char* pod_mapped
    cdef int64_t* mapped
    cdef Py_ssize_t n_mapped
    cdef int64_t* n_tasks
    cdef int64_t* anon
    cdef int64_t* logs
    cdef int64_t* times
    cdef int64_t* which
    cdef double* frac
    cdef int64_t* found  # the later rounds of a weighted choice: files found, the round's picks,
    cdef int64_t* picks  # its uniforms, and the weights with the found files zeroed and their cdf
    cdef double* round_x
    cdef double* round_p
    cdef double* round_cdf
    cdef Py_ssize_t scratch
    # the pod being generated
    cdef Py_ssize_t pod_n, pod_files
    cdef int64_t pod_t0, pod_end, vol, vol_bytes
    # parameters
    cdef int64_t containers_max, tasks_max, anon_steps, kmem_page_bytes, kmem_slab_bytes, socket_bytes
    cdef double shared_map_fraction, anon_mu, anon_sigma, log_mu, log_sigma, tmpfs_fraction, tmpfs_mu
    cdef double tmpfs_sigma, limit_fraction, limit_headroom, tmpfs_outlive_fraction, tmpfs_outlive_s
    cdef double log_keep_fraction, log_keep_s, socket_fraction, socket_linger_s, pinned_fraction, pin_mu
    cdef double slab_free_s, anon_free_fraction, access_interval_s

    def __cinit__(self, rng, p, list file_ids, list file_sizes, weights, cdf, list names):
        self.rng = rng
        self.capsule = rng.bit_generator.capsule
        self.bg = <bitgen_t*>PyCapsule_GetPointer(self.capsule, "BitGenerator")
        self.names, self.file_ids, self.file_sizes = names, file_ids, file_sizes
        self.weights_obj = np.ascontiguousarray(weights, dtype=np.float64)
        self.cdf_obj = np.ascontiguousarray(cdf, dtype=np.float64)
        self.n_files = len(file_ids)
        if self.weights_obj.shape[0] != self.n_files or self.cdf_obj.shape[0] != self.n_files:
            raise ValueError("one weight and one cdf value per shared file")
        cdef const double[::1] view = self.weights_obj
        self.weights = &view[0] if self.n_files else NULL
        view = self.cdf_obj
        self.cdf = &view[0] if self.n_files else NULL
        self.containers_max, self.tasks_max = p.containers_per_pod_max, p.tasks_per_container_max
        self.anon_steps = p.anon_steps
        self.kmem_page_bytes, self.kmem_slab_bytes, self.socket_bytes = (p.kmem_page_bytes, p.kmem_slab_bytes,
                                                                         p.socket_bytes)
        self.k = min(p.shared_files_per_pod, self.n_files)
        self.shared_map_fraction = p.shared_map_fraction
        # math.log(max(median, 4096)) as synth._lognormal_bytes computes it
        self.anon_mu, self.anon_sigma = math.log(max(p.anon_bytes_median, 4096)), p.anon_bytes_sigma
        self.log_mu, self.log_sigma = math.log(max(p.log_bytes_median, 4096)), p.log_bytes_sigma
        self.tmpfs_mu, self.tmpfs_sigma = math.log(max(p.tmpfs_bytes_median, 4096)), p.tmpfs_bytes_sigma
        self.pin_mu = math.log(max(p.pin_bytes_median, 4096))
        self.tmpfs_fraction, self.limit_fraction, self.limit_headroom = (p.tmpfs_fraction, p.limit_fraction,
                                                                         p.limit_headroom)
        self.tmpfs_outlive_fraction, self.tmpfs_outlive_s = p.tmpfs_outlive_fraction, p.tmpfs_outlive_s
        self.log_keep_fraction, self.log_keep_s = p.log_keep_fraction, p.log_keep_s
        self.socket_fraction, self.socket_linger_s = p.socket_fraction, p.socket_linger_s
        self.pinned_fraction, self.slab_free_s = p.pinned_fraction, p.slab_free_s
        self.anon_free_fraction, self.access_interval_s = p.anon_free_fraction, p.access_interval_s
        if not (self.anon_sigma >= 0 and self.log_sigma >= 0 and self.tmpfs_sigma >= 0):
            raise OverflowError("a negative sigma: numpy's lognormal rejects it, the pure generator says so")
        global _kept, _kept_cap
        if _kept != NULL:  # the buffer an earlier machine's array gave back
            self.buf, self.cap = _kept, _kept_cap
            _kept, _kept_cap = NULL, 0
        else:
            self.cap = 1 << 16
            self.buf = <int64_t*>PyMem_Malloc(self.cap * sizeof(int64_t))
        per_pod = max(self.k, 1)
        self.scratch = max(MAX_ACCESSES + 1, self.anon_steps)
        self.chosen = <int64_t*>PyMem_Malloc(per_pod * sizeof(int64_t))
        self.pod_obj = <int64_t*>PyMem_Malloc(per_pod * sizeof(int64_t))
        self.pod_size = <int64_t*>PyMem_Malloc(per_pod * sizeof(int64_t))
        self.pod_pages = <int64_t*>PyMem_Malloc(per_pod * sizeof(int64_t))
        self.pod_mapped = <char*>PyMem_Malloc(per_pod)
        self.mapped = <int64_t*>PyMem_Malloc((per_pod + 1) * sizeof(int64_t))
        self.n_tasks = <int64_t*>PyMem_Malloc(max(self.containers_max, 1) * sizeof(int64_t))
        self.anon = <int64_t*>PyMem_Malloc(max(self.containers_max * self.tasks_max, 1) * sizeof(int64_t))
        self.logs = <int64_t*>PyMem_Malloc(max(self.containers_max, 1) * sizeof(int64_t))
        self.times = <int64_t*>PyMem_Malloc(self.scratch * sizeof(int64_t))
        self.which = <int64_t*>PyMem_Malloc(self.scratch * sizeof(int64_t))
        self.frac = <double*>PyMem_Malloc(self.scratch * sizeof(double))
        self.found = <int64_t*>PyMem_Malloc(per_pod * sizeof(int64_t))
        self.picks = <int64_t*>PyMem_Malloc(per_pod * sizeof(int64_t))
        self.round_x = <double*>PyMem_Malloc(per_pod * sizeof(double))
        self.round_p = <double*>PyMem_Malloc(max(self.n_files, 1) * sizeof(double))
        self.round_cdf = <double*>PyMem_Malloc(max(self.n_files, 1) * sizeof(double))
        if not (self.found and self.picks and self.round_x and self.round_p and self.round_cdf and self.buf and self.chosen and self.pod_obj and self.pod_size and self.pod_pages and self.pod_mapped
                and self.mapped and self.n_tasks and self.anon and self.logs and self.times and self.which
                and self.frac):
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self.buf)
        PyMem_Free(self.chosen)
        PyMem_Free(self.pod_obj)
        PyMem_Free(self.pod_size)
        PyMem_Free(self.pod_pages)
        PyMem_Free(self.pod_mapped)
        PyMem_Free(self.mapped)
        PyMem_Free(self.n_tasks)
        PyMem_Free(self.anon)
        PyMem_Free(self.logs)
        PyMem_Free(self.times)
        PyMem_Free(self.which)
        PyMem_Free(self.frac)
        PyMem_Free(self.found)
        PyMem_Free(self.picks)
        PyMem_Free(self.round_x)
        PyMem_Free(self.round_p)
        PyMem_Free(self.round_cdf)

    cdef object result(self):
        # the buffer handed to a numpy array of its first n values: no copy of a machine's events. The
        # array keeps a capsule whose destructor frees the buffer or keeps it for the next machine
        # (``_free_buffer``; the capsule's context is the capacity): it is not trimmed, for that
        cdef int64_t* buf = self.buf
        owner = PyCapsule_New(buf, NULL, _free_buffer)
        self.buf = NULL
        PyCapsule_SetContext(owner, <void*><size_t>self.cap)
        cdef cnp.npy_intp size = self.n
        out = cnp.PyArray_SimpleNewFromData(1, &size, cnp.NPY_INT64, buf)
        cnp.set_array_base(out, owner)
        return out

    # ------------------------------------------------------------ events, names, draws

    cdef int put(self, int64_t t, int64_t op, int64_t cg, int64_t task, int64_t obj, int64_t off, int64_t nb,
                 int64_t fl) except -1:
        cdef int64_t* grown
        if self.n + 8 > self.cap:
            grown = <int64_t*>PyMem_Realloc(self.buf, 2 * self.cap * sizeof(int64_t))
            if not grown:
                raise MemoryError()
            self.buf, self.cap = grown, 2 * self.cap
        cdef int64_t* e = self.buf + self.n
        e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7] = t, op, cg, task, obj, off, nb, fl
        self.n += 8
        return 0

    cdef inline int64_t name(self, str text) except -1:
        self.names.append(text)
        return len(self.names) - 1

    cdef inline double random(self) noexcept:
        return random_standard_uniform(self.bg)

    cdef int64_t integers(self, int64_t lo, int64_t hi) except? -1:
        # rng.integers(lo, hi): [lo, hi - 1] by Lemire's method, 32 bits per draw when the range fits
        if hi <= lo:
            raise ValueError("low >= high")
        return <int64_t>random_bounded_uint64(self.bg, <uint64_t>lo, <uint64_t>(hi - 1 - lo), 0, False)

    cdef int64_t later(self, int64_t t, double mean_s) except? -1:
        if mean_s <= 0:
            return NEVER
        return t + 1 + _trunc(random_exponential(self.bg, mean_s) * <double>SEC)

    # ------------------------------------------------------------ one pod

    cdef int pod(self, Py_ssize_t n, int64_t t0, int64_t end) except -1:
        cdef Py_ssize_t i, j, at, n_ctr, total
        cdef int64_t cg, footprint, t
        n_ctr = self.integers(1, self.containers_max + 1)
        self.choose()
        for i in range(self.k):
            self.pod_mapped[i] = self.random() < self.shared_map_fraction
        self.pod_n, self.pod_t0, self.pod_end, self.pod_files = n, t0, end, self.k
        for i in range(self.k):
            self.pod_obj[i] = self.file_ids[self.chosen[i]]
            self.pod_size[i] = self.file_sizes[self.chosen[i]]
            self.pod_pages[i] = self.pod_size[i] // 4096
        self.vol, self.vol_bytes = -1, 0
        cg = self.name(f"/pod-{n}")
        self.put(t0, MKDIR, cg, -1, -1, -1, -1, 0)
        total = 0
        for j in range(n_ctr):
            self.n_tasks[j] = self.integers(1, self.tasks_max + 1)
            total += self.n_tasks[j]
        for i in range(total):
            self.anon[i] = _pages_of(random_lognormal(self.bg, self.anon_mu, self.anon_sigma))
        for j in range(n_ctr):
            self.logs[j] = _pages_of(random_lognormal(self.bg, self.log_mu, self.log_sigma))
        if n_ctr > 1 and self.random() < self.tmpfs_fraction:
            self.vol = self.name(f"/dev/shm/pod-{n}/vol")
            self.vol_bytes = _pages_of(random_lognormal(self.bg, self.tmpfs_mu, self.tmpfs_sigma))
            self.put(t0, FILE_CREATE, -1, -1, self.vol, -1, -1, F_SHMEM)
        if self.random() < self.limit_fraction:
            footprint = self.vol_bytes
            for i in range(total):
                footprint += self.anon[i]
            for j in range(n_ctr):
                footprint += self.logs[j]
            for i in range(self.k):
                footprint += self.pod_size[i]
            self.put(t0, SET_LIMIT, cg, -1, -1, -1, _trunc(<double>footprint * self.limit_headroom), F_MAX)
        at = 0
        for j in range(n_ctr):
            self.container(j, at, self.n_tasks[j], self.logs[j])
            at += self.n_tasks[j]
        # pod teardown: containers were removed at end+1..end+n_ctr; the pod goes last
        self.put(end + n_ctr + 1, RMDIR, cg, -1, -1, -1, -1, 0)
        if self.vol >= 0:
            t = self.later(end + 1, self.tmpfs_outlive_s) if self.random() < self.tmpfs_outlive_fraction else end + 1
            self.put(t, FILE_DELETE, -1, -1, self.vol, -1, -1, 0)
        return 0

    cdef int choose(self) except -1:
        # synth._choose: k uniforms looked up in the cdf (searchsorted, side right); a repeat -> choose_again
        cdef Py_ssize_t i, j
        cdef bint repeat = False
        for i in range(self.k):
            self.chosen[i] = _searchsorted_right(self.cdf, self.n_files, self.random())
            for j in range(i):
                if self.chosen[j] == self.chosen[i]:
                    repeat = True
        if repeat:
            self.choose_again()
        return 0

    cdef void choose_again(self) noexcept:
        # synth.choose_again: keep each round's first occurrences; draw the missing ones with the found
        # files' weights zeroed, the cdf recomputed (cumsum, then divided by its last value)
        cdef Py_ssize_t i, j, n = 0, m = self.k
        cdef double last
        for i in range(self.k):
            self.picks[i] = self.chosen[i]
        while n < self.k:
            if n > 0:
                m = self.k - n
                for i in range(m):
                    self.round_x[i] = self.random()
                for i in range(self.n_files):
                    self.round_p[i] = self.weights[i]
                for i in range(n):
                    self.round_p[self.found[i]] = 0
                self.round_cdf[0] = self.round_p[0]
                for i in range(1, self.n_files):
                    self.round_cdf[i] = self.round_cdf[i - 1] + self.round_p[i]
                last = self.round_cdf[self.n_files - 1]
                for i in range(self.n_files):
                    self.round_cdf[i] = self.round_cdf[i] / last
                for i in range(m):
                    self.picks[i] = _searchsorted_right(self.round_cdf, self.n_files, self.round_x[i])
            for i in range(m):  # np.unique(return_index=True), indices sorted: first occurrences in order
                for j in range(i):
                    if self.picks[j] == self.picks[i]:
                        break
                else:
                    self.found[n] = self.picks[i]
                    n += 1
        for i in range(self.k):
            self.chosen[i] = self.found[i]

    cdef int container(self, Py_ssize_t j, Py_ssize_t at, Py_ssize_t n_tasks, int64_t log_bytes) except -1:
        cdef Py_ssize_t k
        cdef int64_t cg, log, t_mk, start, end, t
        cg = self.name(f"/pod-{self.pod_n}/ctr-{j}")
        t_mk = self.pod_t0 + 1 + j
        self.put(t_mk, MKDIR, cg, -1, -1, -1, -1, 0)
        log = self.name(f"/var/log/pods/pod-{self.pod_n}/ctr-{j}.log")
        self.put(t_mk, FILE_CREATE, -1, -1, log, -1, 0, 0)
        for k in range(n_tasks):
            if k == 0:
                start, end = t_mk + 1, self.pod_end
            else:
                start = _trunc(self._uniform(t_mk + 1, max(self.pod_end - SEC, t_mk + 2)))
                end = min(_trunc(self._uniform(start + SEC // 2, max(self.pod_end, start + SEC))), self.pod_end)
            self.task(cg, f"p{self.pod_n}c{j}t{k}", start, end, self.anon[at + k], j == 0 and k == 0,
                      j > 0 and k == 0, log if k == 0 else -1, log_bytes)
        self.put(self.pod_end + 1 + j, RMDIR, cg, -1, -1, -1, -1, 0)
        if self.random() < self.log_keep_fraction:
            t = self.later(self.pod_end + 1 + j, self.log_keep_s)
        else:
            t = self.pod_end + 1 + j
        self.put(t, FILE_DELETE, -1, -1, log, -1, -1, 0)
        return 0

    cdef inline double _uniform(self, int64_t low, int64_t high) noexcept:
        # rng.uniform(low, high) of two ints: both made floats, the range their difference
        return random_uniform(self.bg, <double>low, <double>high - <double>low)

    # ------------------------------------------------------------ one task

    cdef int task(self, int64_t cg, str name, int64_t start, int64_t end, int64_t heap, bint writer,
                  bint reader, int64_t log, int64_t log_bytes) except -1:
        cdef Py_ssize_t i
        cdef int64_t task, t, kstack, dentries, region, sock, step, want, lo, hi
        cdef int64_t pin_obj = -1, pin_bytes = 0, pin_flags = 0
        task = self.name(name)
        self.put(start, TASK_START, cg, task, -1, -1, -1, 0)
        t = start + 1
        kstack = self.name(f"kmem:{name}:stack")
        dentries = self.name(f"kmem:{name}:dentries")
        region = self.name(f"anon:{name}")
        self.put(t, KMEM_ALLOC, -1, task, kstack, -1, self.kmem_page_bytes, F_PAGE)
        self.put(t, KMEM_ALLOC, -1, task, dentries, -1, self.kmem_slab_bytes, F_SLAB)
        if self.socket_fraction > 0 and self.random() < self.socket_fraction:
            sock = self.name(f"sock:{name}")
            self.put(t, SOCK_OPEN, -1, task, sock, -1, self.socket_bytes, 0)
            self.put(self.later(end, self.socket_linger_s), SOCK_CLOSE, -1, -1, sock, -1, -1, 0)
        step = max(heap // max(self.anon_steps, 1) // 4096, 1) * 4096
        self.put(t + 1, ANON_ALLOC, -1, task, region, -1, step, 0)
        self.n_mapped = 0
        for i in range(self.pod_files):  # the loader maps or reads the pod's image files
            if self.pod_mapped[i]:
                self.put(t + 2, FILE_MAP, -1, task, self.pod_obj[i], 0, self.pod_size[i], 0)
                self.mapped[self.n_mapped] = self.pod_obj[i]
                self.n_mapped += 1
            else:
                self.put(t + 2, FILE_READ, -1, task, self.pod_obj[i], -1, -1, 0)
        if writer and self.vol >= 0:
            self.put(t + 3, FILE_WRITE, -1, task, self.vol, 0, self.vol_bytes, 0)
        if self.random() < self.pinned_fraction:  # synth._pin
            want = _pages_of(random_lognormal(self.bg, self.pin_mu, 1.0))
            if self.n_mapped and self.random() < 0.5:
                pin_obj, pin_bytes, pin_flags = self.mapped[0], want, F_NONE
            else:
                pin_obj, pin_bytes, pin_flags = region, min(want, step), F_MLOCK
            self.put(t + 4, PIN, -1, task, pin_obj, 0, pin_bytes, pin_flags)
        lo, hi = t + 10, end - 10
        if hi > lo:
            self.running(task, region, heap, step, reader, log, log_bytes, lo, hi)
        if pin_obj >= 0:
            self.put(end - 3, UNPIN, -1, task, pin_obj, 0, pin_bytes, pin_flags)
        for i in range(self.n_mapped):
            self.put(end - 2, FILE_UNMAP, -1, task, self.mapped[i], -1, -1, 0)
        self.put(end, TASK_EXIT, -1, task, -1, -1, -1, 0)
        self.put(self.later(end, self.slab_free_s), KMEM_FREE, -1, -1, dentries, -1, -1, 0)
        return 0

    cdef int running(self, int64_t task, int64_t region, int64_t heap, int64_t step, bint reader, int64_t log,
                     int64_t log_bytes, int64_t lo, int64_t hi) except -1:
        cdef Py_ssize_t i, n_acc, n
        cdef int64_t freed, t, first, pages, length, chunk
        cdef double lam
        for i in range(self.anon_steps - 1):
            self.times[i] = self.integers(lo, hi)
        _sort(self.times, max(self.anon_steps - 1, 0))
        for i in range(self.anon_steps - 1):
            self.put(self.times[i], ANON_ALLOC, -1, task, region, -1, step, 0)
        if self.anon_free_fraction > 0:
            freed = _trunc(<double>heap * self.anon_free_fraction) // 4096 * 4096
            if freed:
                self.put(self.integers(lo, hi), ANON_FREE, -1, task, region, 0, freed, 0)
        if reader and self.vol >= 0:  # synth._read_volume
            t = self.integers(lo, hi)
            if self.random() < self.shared_map_fraction:
                self.put(t, FILE_MAP, -1, task, self.vol, 0, self.vol_bytes, 0)
                self.mapped[self.n_mapped] = self.vol
                self.n_mapped += 1
            else:
                self.put(t, FILE_READ, -1, task, self.vol, -1, -1, 0)
        n_acc = 0
        if self.access_interval_s > 0:  # synth._n_accesses
            lam = <double>(hi - lo) / <double>SEC / self.access_interval_s
            if not lam <= POISSON_LAM_MAX:
                raise OverflowError("lam too large for numpy's poisson: the pure generator says so")
            n_acc = min(random_poisson(self.bg, lam), MAX_ACCESSES)
        if n_acc and self.pod_files:  # synth._reaccess
            for i in range(n_acc):
                self.times[i] = self.integers(lo, hi)
            for i in range(n_acc):
                self.which[i] = self.integers(0, self.pod_files)
            for i in range(n_acc):
                self.frac[i] = self.random()
            _sort(self.times, n_acc)
            for i in range(n_acc):
                pages = self.pod_pages[self.which[i]]
                first = <int64_t>(self.frac[i] * <double>pages)
                length = max(1, min(pages - first, 256))
                self.put(self.times[i], FILE_READ, -1, task, self.pod_obj[self.which[i]], first * 4096,
                         length * 4096, 0)
        if log >= 0:  # synth._write_log
            n = max(1, min(n_acc + 1, log_bytes // 4096))
            chunk = log_bytes // n
            for i in range(n):
                self.times[i] = self.integers(lo, hi)
            _sort(self.times, n)
            for i in range(n):
                self.put(self.times[i], FILE_WRITE, -1, task, log, i * chunk, chunk, 0)
        return 0


# ---------------------------------------------------------------- the table's columns


def sorted_columns(const int64_t[::1] buf, int64_t horizon, int64_t memory_bytes, int64_t memory_op):
    """``traces.generate.sorted_columns`` in C: the same eight arrays, the same values.

    In: packed events (8 int64 per event, emission order), the horizon, the size of a ``memory``
    row to put first (0 = none) and its op code. Out: time, op, cgroup, task, object, offset,
    bytes, flags of the events before the horizon, sorted by time with ties in emission order;
    time, offset and bytes int64, the others int32 (as numpy's astype casts them). The order is
    ``_sorted_rows``'.
    """
    cdef Py_ssize_t total = buf.shape[0] // 8, n, first = 0
    cdef uint64_t* a = _rows_scratch(total)
    try:
        n = _sorted_rows(buf, horizon, a, a + max(total, 1))
        if memory_bytes > 0 and n > 0:
            first = 1
        cols = [np.empty(n + first, dtype=np.int64 if c in (0, 5, 6) else np.int32) for c in range(8)]
        _gather_rows(buf, <int64_t*>a, n, first, cols)
        if first:
            for c, v in enumerate((buf[8 * a[0]], memory_op, -1, -1, -1, -1, memory_bytes, 0)):
                cols[c][0] = v
        return cols
    finally:
        _rows_done(a)


# A sort's two arrays of row numbers (``_sorted_rows``' ``a`` and ``spare``), kept between machines for
# the reason the events buffer is (``_kept``): one block of 2 x ``_rows_cap`` values, at most KEEP_MAX.
cdef uint64_t* _rows_kept = NULL
cdef Py_ssize_t _rows_cap = 0


cdef uint64_t* _rows_scratch(Py_ssize_t n) except NULL:
    # 2 x n values (at least 2): the kept block when it is big enough, else a new one, kept if small enough;
    # give it back with _rows_done
    global _rows_kept, _rows_cap
    n = max(n, 1)
    if n <= _rows_cap:
        return _rows_kept
    cdef uint64_t* block = <uint64_t*>PyMem_Malloc(2 * n * sizeof(uint64_t))
    if not block:
        raise MemoryError()
    if 2 * n <= KEEP_MAX:
        PyMem_Free(_rows_kept)
        _rows_kept, _rows_cap = block, n
    return block


cdef void _rows_done(uint64_t* block) noexcept:
    if block != _rows_kept:
        PyMem_Free(block)


cdef Py_ssize_t _sorted_rows(const int64_t[::1] buf, int64_t horizon, uint64_t* a, uint64_t* spare) except -1:
    # The rows of the events before the horizon (``a``, n of them, returned), sorted by time with ties
    # in emission order: an LSD radix sort of the times, 8 bits a pass, stable by construction; when
    # the time span and the row number fit 64 bits together they are sorted as one number (time
    # above, row below: half the memory), otherwise as times carrying their rows. ``a`` and ``spare``
    # hold one value per event
    cdef Py_ssize_t total = buf.shape[0] // 8, n = 0, i
    cdef int64_t t, tmin = 0, tmax = 0
    cdef int row_bits = _bit_length(<uint64_t>total), span_bits
    cdef uint64_t* keys = NULL
    cdef uint64_t* spare_keys = NULL
    cdef uint64_t row_mask = (<uint64_t>1 << row_bits) - 1 if row_bits < 64 else <uint64_t>-1
    try:
        for i in range(total):  # the rows before the horizon, in emission order
            t = buf[8 * i]
            if t < horizon:
                if n == 0 or t < tmin:
                    tmin = t
                if n == 0 or t > tmax:
                    tmax = t
                a[n] = i
                n += 1
        span_bits = _bit_length(<uint64_t>(tmax - tmin))
        if row_bits + span_bits <= 64:
            for i in range(n):
                a[i] = (<uint64_t>(buf[8 * a[i]] - tmin) << row_bits) | a[i]
            _radix_sort(a, NULL, spare, NULL, n, row_bits, row_bits + span_bits)
            for i in range(n):
                a[i] &= row_mask
        else:
            keys = <uint64_t*>PyMem_Malloc(max(n, 1) * sizeof(uint64_t))
            spare_keys = <uint64_t*>PyMem_Malloc(max(n, 1) * sizeof(uint64_t))
            if not (keys and spare_keys):
                raise MemoryError()
            for i in range(n):
                keys[i] = <uint64_t>(buf[8 * a[i]] - tmin)
            _radix_sort(keys, a, spare_keys, spare, n, 0, span_bits)
        return n
    finally:
        PyMem_Free(keys)
        PyMem_Free(spare_keys)


cdef inline int _bit_length(uint64_t x) noexcept:
    cdef int bits = 0
    while x:
        bits += 1
        x >>= 1
    return bits


@cython.overflowcheck(False)  # counts and indices below n
cdef void _radix_sort(uint64_t* keys, uint64_t* carried, uint64_t* spare_keys, uint64_t* spare_carried,
                      Py_ssize_t n, int lo_bit, int hi_bit) noexcept:
    # LSD radix sort of keys (and ``carried`` with them, unless NULL) by bits lo_bit..hi_bit of the
    # keys, 8 a pass; each pass is stable, so keys equal in those bits keep their order. The
    # result is left in keys / carried
    cdef Py_ssize_t count[256]
    cdef Py_ssize_t i, total, c
    cdef int shift = lo_bit
    cdef uint64_t* k_from = keys
    cdef uint64_t* k_to = spare_keys
    cdef uint64_t* o_from = carried
    cdef uint64_t* o_to = spare_carried
    while shift < hi_bit:
        for i in range(256):
            count[i] = 0
        for i in range(n):
            count[(k_from[i] >> shift) & 255] += 1
        total = 0
        for i in range(256):
            c = count[i]
            count[i] = total
            total += c
        for i in range(n):
            c = (k_from[i] >> shift) & 255
            k_to[count[c]] = k_from[i]
            if o_from != NULL:
                o_to[count[c]] = o_from[i]
            count[c] += 1
        k_from, k_to = k_to, k_from
        o_from, o_to = o_to, o_from
        shift += 8
    if k_from != keys:  # an odd number of passes: the result is in the spare arrays
        for i in range(n):
            keys[i] = k_from[i]
            if o_from != NULL:
                carried[i] = o_from[i]


@cython.overflowcheck(False)  # indices below n + 1
cdef int _gather_rows(const int64_t[::1] buf, const int64_t* order, Py_ssize_t n, Py_ssize_t first,
                      list cols) except -1:
    # each event's row read once (64 bytes, one cache line), its eight values written to the columns
    cdef int64_t[::1] t = cols[0]
    cdef int[::1] op = cols[1]
    cdef int[::1] cg = cols[2]
    cdef int[::1] task = cols[3]
    cdef int[::1] obj = cols[4]
    cdef int64_t[::1] off = cols[5]
    cdef int64_t[::1] nb = cols[6]
    cdef int[::1] fl = cols[7]
    cdef const int64_t* row
    cdef Py_ssize_t i, j
    for i in range(n):
        row = &buf[8 * order[i]]
        j = i + first
        t[j] = row[0]
        op[j] = <int>row[1]
        cg[j] = <int>row[2]
        task[j] = <int>row[3]
        obj[j] = <int>row[4]
        off[j] = row[5]
        nb[j] = row[6]
        fl[j] = <int>row[7]
    return 0


def take_names(list names, list id_arrays):
    """``pa.array(names, pa.string()).take(ids)`` for each of ``id_arrays`` (int32; ids < 0 and
    None names: null), as buffers.

    Out: per id array (offsets, data, validity bitmap or None, null count) of the string array,
    each an exact-size numpy array, the UTF-8 bytes copied from the ``str`` objects themselves (no
    Arrow array of the names is built, and Arrow's take would grow its data buffer by doubling,
    each growth fresh pages); None where the result would not fit a string array's int32 offsets
    (the caller then lets Arrow say so). An id past the names is an IndexError, as in Arrow.
    """
    cdef Py_ssize_t m = len(names), i, length
    cdef const char** text = <const char**>PyMem_Malloc(max(m, 1) * sizeof(char*))
    cdef Py_ssize_t* lengths = <Py_ssize_t*>PyMem_Malloc(max(m, 1) * sizeof(Py_ssize_t))
    try:
        if not (text and lengths):
            raise MemoryError()
        for i in range(m):  # each name's UTF-8 bytes (CPython keeps them with the str), NULL for None
            name = names[i]
            if name is None:
                text[i], lengths[i] = NULL, 0
            else:
                text[i] = PyUnicode_AsUTF8AndSize(name, &length)
                lengths[i] = length
        return [_take(text, lengths, m, ids) for ids in id_arrays]
    finally:
        PyMem_Free(text)
        PyMem_Free(lengths)


@cython.overflowcheck(False)  # lengths summed in int64 and checked against the int32 offsets' limit
cdef object _take(const char** text, const Py_ssize_t* lengths, Py_ssize_t m, const int32_t[::1] ids):
    cdef Py_ssize_t n = ids.shape[0], i, nulls = 0
    cdef int32_t k
    cdef int64_t size = 0, at = 0
    for i in range(n):
        k = ids[i]
        if k >= m:
            raise IndexError(f"name id {k} past the {m} names")
        if k < 0 or text[k] == NULL:
            nulls += 1
        else:
            size += lengths[k]
    if size > 2147483647:
        return None
    out_offsets = np.empty(n + 1, dtype=np.int32)
    out_data = np.empty(max(size, 1), dtype=np.uint8)
    validity = np.zeros((n + 7) // 8, dtype=np.uint8) if nulls else None
    cdef int32_t[::1] o = out_offsets
    cdef uint8_t[::1] d = out_data
    cdef uint8_t[::1] v
    if nulls:
        v = validity
    o[0] = 0
    for i in range(n):
        k = ids[i]
        if k >= 0 and text[k] != NULL:
            if lengths[k]:
                memcpy(&d[at], text[k], lengths[k])
            at += lengths[k]
            if nulls:
                v[i >> 3] |= <uint8_t>(1 << (i & 7))
        o[i + 1] = <int32_t>at
    return out_offsets, out_data, validity, nulls


@cython.overflowcheck(False)  # indices below the sizes; row numbers as the caller's int64
def batch_columns(const int64_t[::1] buf, int64_t horizon, list names, const int32_t[::1] canon,
                  const uint8_t[::1] op_codes, const int32_t[::1] flag_codes, int64_t first_row):
    """``traces.generate.batch_columns``' arrays and name tables in C: one pass over the sorted rows.

    In: packed events, the horizon, the names and per name id the id standing for its text (-1:
    none; ``_canonical``), the batch's op code per op id, its flag bits per flag id with a null
    flag's last, and the first row number. Out: None when an op id is outside ``op_codes``, a flag
    id below -1 or past the last but one of ``flag_codes``, or a name id past ``canon`` (each id as
    ``sorted_columns`` casts it to int32); else time (int64), op (uint8), cgroup, task, object (int32
    codes in order of first use, -1 null), offset and bytes (int64, negative ones -1), flags
    (int32), row (int64, ``first_row`` on) of the events before the horizon in ``sorted_columns``'
    order, and the three name tables (lists of ``names``, in order of first use). The same values
    as ``sorted_columns``, the lookups and ``first_use`` make, without their intermediate columns.
    """
    cdef Py_ssize_t total = buf.shape[0] // 8, n, i, c, m = canon.shape[0]
    cdef Py_ssize_t k[3]
    cdef int32_t[:, ::1] used
    if len(names) != m or flag_codes.shape[0] < 1:
        raise ValueError("one canon entry per name, and a null flag's code last")
    cdef uint64_t* a = _rows_scratch(total)
    try:
        n = _sorted_rows(buf, horizon, a, a + max(total, 1))
        t_out, off_out, nb_out, row_out = (np.empty(n, dtype=np.int64) for _ in range(4))
        op_out, fl_out = np.empty(n, dtype=np.uint8), np.empty(n, dtype=np.int32)
        name_out = [np.empty(n, dtype=np.int32) for _ in range(3)]
        used_ids = np.empty((3, max(m, 1)), dtype=np.int32)
        code_of = np.full((3, max(m, 1)), -1, dtype=np.int32)  # per column and name id its code, -1 until used
        if not _batch_rows(buf, a, n, canon, op_codes, flag_codes, first_row, t_out, op_out, name_out[0],
                           name_out[1], name_out[2], off_out, nb_out, fl_out, row_out, used_ids, code_of, k):
            return None
        used = used_ids
        tables = [[names[used[c, i]] for i in range(k[c])] for c in range(3)]
        return (t_out, op_out, name_out[0], name_out[1], name_out[2], off_out, nb_out, fl_out, row_out, *tables)
    finally:
        _rows_done(a)


@cython.overflowcheck(False)
cdef bint _batch_rows(const int64_t[::1] buf, const uint64_t* a, Py_ssize_t n, const int32_t[::1] canon,
                      const uint8_t[::1] op_codes, const int32_t[::1] flag_codes, int64_t first_row,
                      int64_t[::1] t, uint8_t[::1] op, int32_t[::1] cg, int32_t[::1] task, int32_t[::1] obj,
                      int64_t[::1] off, int64_t[::1] nb, int32_t[::1] fl, int64_t[::1] row, int32_t[:, ::1] used,
                      int32_t[:, ::1] code_of, Py_ssize_t* k) except -1:
    # batch_columns' pass: each sorted row read once, its values written to the batch's columns;
    # False (nothing else to do: the caller goes through the table) at a value outside the lookups
    cdef Py_ssize_t i, c, m = canon.shape[0], n_ops = op_codes.shape[0], n_flags = flag_codes.shape[0] - 1
    cdef const int64_t* r
    cdef int32_t v, j
    k[0] = k[1] = k[2] = 0
    for i in range(n):
        r = &buf[8 * a[i]]
        t[i] = r[0]
        v = <int32_t>r[1]
        if v < 0 or v >= n_ops:
            return False
        op[i] = op_codes[v]
        for c in range(3):
            v = <int32_t>r[2 + c]
            if v >= m:
                return False
            j = canon[v] if v >= 0 else -1
            if j >= m:
                raise IndexError(f"name id {j} past the {m} names")
            if j >= 0 and code_of[c, j] < 0:
                code_of[c, j] = <int32_t>k[c]
                used[c, k[c]] = j
                k[c] += 1
            v = code_of[c, j] if j >= 0 else -1
            if c == 0:
                cg[i] = v
            elif c == 1:
                task[i] = v
            else:
                obj[i] = v
        off[i] = r[5] if r[5] >= 0 else -1
        nb[i] = r[6] if r[6] >= 0 else -1
        v = <int32_t>r[7]
        if v < -1 or v >= n_flags:
            return False
        fl[i] = flag_codes[v if v >= 0 else n_flags]
        row[i] = first_row + i
    return True
