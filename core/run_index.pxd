# an object's run starts searched through their buffer, an element of an int8, int32 or int64 column read,
# stored, appended or deleted, one inserted into an int32 array: C calls from the compiled modules that
# cimport them (the inline ones are inlined there: this module is a type module in core/__init__.py, so an
# edit here runs every module pure until the rebuild)
from cpython.array cimport array, clone, resize_smart
from libc.string cimport memmove

cpdef Py_ssize_t starts_right(array starts, long long x) except -1
cpdef Py_ssize_t starts_left(array starts, long long x) except -1
cpdef array object_segments(array starts, array runs, array start, array npages, long long lo, long long hi)
cdef array _Q


cdef inline Py_ssize_t _element(array a, Py_ssize_t i) except -1:
    # the element ``a[i]`` names, as Python's indexing does: a negative index counts from the end; IndexError
    # outside
    if i < 0:
        i += a.ob_size
    if i < 0 or i >= a.ob_size:
        raise IndexError("array index out of range")
    return i


cdef inline int i32_at(array a, Py_ssize_t i) except? -1:
    # run_index.i32_at in C: a[i] of an int32 column read through its buffer
    return a.data.as_ints[_element(a, i)]


cdef inline signed char i8_at(array a, Py_ssize_t i) except? -1:
    # run_index.i8_at in C: a[i] of an int8 column read through its buffer
    return a.data.as_schars[_element(a, i)]


cdef inline long long i64_at(array a, Py_ssize_t i) except? -1:
    # run_index.i64_at in C: a[i] of an int64 column read through its buffer
    return a.data.as_longlongs[_element(a, i)]


cdef inline int delete_at(array a, Py_ssize_t i) except -1:
    # run_index.delete_at in C: ``del a[i]`` for an element of ``a``, a memmove and a shrink (no Python
    # call); an index outside takes the array's own ``del`` and its IndexError
    cdef Py_ssize_t n = a.ob_size
    if i < 0 or i >= n:
        del a[i]
        return 0
    memmove(a.data.as_chars + i * a.ob_descr.itemsize, a.data.as_chars + (i + 1) * a.ob_descr.itemsize,
            (n - i - 1) * a.ob_descr.itemsize)
    resize_smart(a, n - 1)
    return 0


cdef inline int insert_i32(array a, Py_ssize_t i, int v) except -1:
    # run_index.insert_i32 in C: grow by one element (over-allocating, as array.insert does), shift, store
    cdef Py_ssize_t n = a.ob_size
    if i < 0 or i > n:
        raise IndexError("array insertion index out of range")
    resize_smart(a, n + 1)
    memmove(a.data.as_ints + i + 1, a.data.as_ints + i, (n - i) * sizeof(int))
    a.data.as_ints[i] = v
    return 0


cdef inline bint _fits(array a, long long v):
    # is ``a`` a 'b', 'i' or 'q' column that holds ``v`` as it is (the stores below go through its buffer)
    cdef char tc = a.ob_descr.typecode
    return tc == 113 or (tc == 105 and -0x80000000 <= v <= 0x7FFFFFFF) or (tc == 98 and -0x80 <= v <= 0x7F)


cdef inline void _put(array a, Py_ssize_t i, long long v):
    # store ``v`` at ``i`` through the buffer of a column ``_fits`` accepted, at its own width
    cdef char tc = a.ob_descr.typecode
    if tc == 113:
        a.data.as_longlongs[i] = v
    elif tc == 105:
        a.data.as_ints[i] = <int>v
    else:
        a.data.as_schars[i] = <signed char>v


cdef inline int store_int(array a, Py_ssize_t i, long long v) except -1:
    # run_index.store_int in C: a[i] = v through the buffer when ``i`` is an element and ``v`` fits the
    # column; anything else takes the array's own item store and its errors (IndexError, OverflowError)
    if 0 <= i < a.ob_size and _fits(a, v):
        _put(a, i, v)
    else:
        a[i] = v
    return 0


cdef inline int append_int(array a, long long v) except -1:
    # run_index.append_int in C: one more element, stored through the buffer when ``v`` fits the column;
    # anything else takes the array's own append and its errors
    cdef Py_ssize_t n = a.ob_size
    if _fits(a, v):
        resize_smart(a, n + 1)
        _put(a, n, v)
    else:
        a.append(v)
    return 0
