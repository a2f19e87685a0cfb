# an object's run starts searched through their buffer, an element inserted into an int32 array and one
# appended to an int32 or int64 column: C calls from the compiled modules that cimport them (insert_i32
# and append_int are inlined there: this module is a type module in core/__init__.py, so an edit here
# runs every module pure until the rebuild)
from cpython.array cimport array, resize_smart
from libc.string cimport memmove

cpdef Py_ssize_t starts_right(array starts, long long x) except -1
cpdef Py_ssize_t starts_left(array starts, long long x) except -1


cdef inline int insert_i32(array a, Py_ssize_t i, int v) except -1:
    # run_index.insert_i32 in C: grow by one element (over-allocating, as array.insert does), shift, store
    cdef Py_ssize_t n = a.ob_size
    if i < 0 or i > n:
        raise IndexError("array insertion index out of range")
    resize_smart(a, n + 1)
    memmove(a.data.as_ints + i + 1, a.data.as_ints + i, (n - i) * sizeof(int))
    a.data.as_ints[i] = v
    return 0


cdef inline int append_int(array a, long long v) except -1:
    # run_index.append_int in C: one more element stored through the buffer ('b', 'i' or 'q' columns,
    # the value of the column's own type); anything else takes the array's own append and its errors
    cdef Py_ssize_t n = a.ob_size
    cdef char tc = a.ob_descr.typecode
    if tc == 113:  # 'q'
        resize_smart(a, n + 1)
        a.data.as_longlongs[n] = v
    elif tc == 105 and -0x80000000 <= v <= 0x7FFFFFFF:  # 'i'
        resize_smart(a, n + 1)
        a.data.as_ints[n] = v
    elif tc == 98 and -0x80 <= v <= 0x7F:  # 'b'
        resize_smart(a, n + 1)
        a.data.as_schars[n] = v
    else:
        a.append(v)
    return 0
