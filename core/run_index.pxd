# an object's run starts searched through their buffer: C calls from the compiled modules that cimport them
from cpython.array cimport array

cpdef Py_ssize_t starts_right(array starts, long long x) except -1
cpdef Py_ssize_t starts_left(array starts, long long x) except -1
