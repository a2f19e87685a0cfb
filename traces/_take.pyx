# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""A string column gathered by two index arrays, compiled: ``traces.take.strings_pure`` in two C loops.

In: a string array's offsets (its own slice, ``len + 1`` values) and data buffer, ``rows`` (int32,
-1 = null) and ``order`` (int64): output row ``i`` is ``rows[order[i]]``. Out (``gather``): the new
array's offsets (int32, exact size), data (uint8, exact size), validity bitmap (uint8, LSB first, or
None when no row is null) and null count; None when the data would need 64-bit offsets.

The pure function first gathers ``rows[order]`` into a fresh array, then each string's length,
then their cumulative sum, then the bytes through Arrow's take a chunk at a time, copied in: five
passes, three of them over fresh full-size temporaries. Here one loop sums the lengths into the
offsets and one copies each string's bytes into place; nothing else of the column's size is
allocated. The strings, nulls and order are the same (``tests/test_take.py`` compares both).

``join_decimal``: names made of literal pieces and integers (``/job-<job>/task-<index>.<n>``), for
``traces.importers.build.join_decimal``, whose reference (``join_decimal_pure``) casts each integer
column to strings and joins them with Arrow: an intermediate string array per piece and per join.
Here one loop sizes every string and one writes it, the digits two at a time (``tests/test_take.py``).

``count_byte`` (the depth of each cgroup path: its "/") and ``take_suffixed`` (``<task>:cache``:
gathered strings with a suffix, in one pass) serve ``traces.importers.emit`` the same way; their
references are Arrow's ``count_substring`` and a take then a join.

``gather_codes`` puts the events' op, flags, offset and bytes in output order in one pass (for
``traces.importers.codes``; its reference gathers each with numpy and splits the flags with numpy).

``first_seen`` numbers int64 keys in order of first appearance through one hash table
(``traces.importers.build.first_seen``; its reference is Arrow's ``dictionary_encode``).
"""

cimport cython
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

import numpy as np


def gather(const int32_t[::1] base_off, const uint8_t[::1] base_data, const int32_t[::1] rows,
           const int64_t[::1] order):
    """(offsets, data, bitmap or None, null count) of the strings ``rows[order]``; None past 2^31 bytes."""
    cdef Py_ssize_t n = order.shape[0], nbase = base_off.shape[0] - 1, nrows = rows.shape[0]
    cdef Py_ssize_t i, nulls = 0, bad = -1
    cdef int64_t e, total = 0, limit = (<int64_t>1) << 31, nbytes = base_data.shape[0]
    cdef int32_t j
    offsets = np.empty(n + 1, dtype=np.int32)
    source = np.empty(n, dtype=np.int32)  # per output row its base row: the copy loop reads it in order
    cdef int32_t[::1] off = offsets
    cdef int32_t[::1] src = source
    with nogil:
        off[0] = 0
        for i in range(n):
            e = order[i]
            if e < 0 or e >= nrows:
                bad = i
                break
            j = rows[e]
            src[i] = j
            if j >= 0:
                if j >= nbase:
                    bad = i
                    break
                total += base_off[j + 1] - base_off[j]
                if total >= limit:
                    break
            else:
                nulls += 1
            off[i + 1] = <int32_t>total
    if bad >= 0:
        raise IndexError(f"row {bad}: index out of bounds")
    if total >= limit:
        return None
    data = np.empty(total, dtype=np.uint8)
    bitmap = np.zeros((n + 7) // 8, dtype=np.uint8) if nulls else None
    cdef uint8_t[::1] d = data
    cdef uint8_t[::1] bits
    cdef int64_t lo, ln, at
    if nulls:
        bits = bitmap
    with nogil:
        for i in range(n):
            j = src[i]
            if j < 0:
                continue
            lo = off[i]
            ln = off[i + 1] - lo
            at = base_off[j]
            if ln <= 32 and lo + 32 <= total and at + 32 <= nbytes:
                # a short name: one fixed-size copy (inlined); the bytes past it are the next names' place,
                # written after it, and the reads stay inside the base
                memcpy(&d[lo], &base_data[at], 32)
            elif ln > 0:
                memcpy(&d[lo], &base_data[at], ln)
            if nulls:
                bits[i >> 3] |= <uint8_t>(1 << (i & 7))
    return offsets, data, bitmap, nulls


cdef const char *_PAIRS = (b"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                           b"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                           b"8081828384858687888990919293949596979899")


cdef extern from *:
    """
    static const unsigned long long _take_pow10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
        1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
        1000000000000000000ULL, 10000000000000000000ULL};
    /* decimal digits of u: from its bit length (log10(2) ~ 1233 / 4096), then one comparison */
    static inline int _take_digits(unsigned long long u) {
        int t = ((64 - __builtin_clzll(u | 1)) * 1233) >> 12;  /* 0..19 */
        return u ? t + 1 - (u < _take_pow10[t]) : 1;
    }
    """
    int _take_digits(unsigned long long u) nogil


@cython.overflowcheck(False)
cdef inline int _ndigits(int64_t v) noexcept nogil:
    # the length of v in decimal, its sign included
    cdef uint64_t u = (<uint64_t>0 - <uint64_t>v) if v < 0 else <uint64_t>v
    return _take_digits(u) + (v < 0)


@cython.overflowcheck(False)
@cython.cdivision(True)
cdef inline Py_ssize_t _decimal(uint8_t *out, int64_t v, int width) noexcept nogil:
    # writes v in decimal (as Arrow's cast to string does) in ``width`` bytes (``_ndigits(v)``)
    cdef uint64_t u = (<uint64_t>0 - <uint64_t>v) if v < 0 else <uint64_t>v
    cdef Py_ssize_t end = width
    cdef uint64_t r
    if v < 0:
        out[0] = 45
    while u >= 100:
        r = u % 100
        u //= 100
        end -= 2
        out[end] = _PAIRS[2 * r]
        out[end + 1] = _PAIRS[2 * r + 1]
    if u >= 10:
        end -= 2
        out[end] = _PAIRS[2 * u]
        out[end + 1] = _PAIRS[2 * u + 1]
    else:
        out[end - 1] = <uint8_t>(48 + u)
    return width


@cython.overflowcheck(False)
@cython.cdivision(True)
def join_decimal(list parts, Py_ssize_t n, Py_ssize_t head, const uint8_t[::1] tail, const uint8_t[::1] valid):
    """(offsets, data, bitmap or None, null count) of ``n`` strings, each the concatenation of ``parts``:
    a ``bytes`` part is written as it is, an int64 array's value of the row in decimal. Parts from
    index ``head`` on are written only where ``tail`` is nonzero (``tail`` empty: everywhere); a row
    where ``valid`` is zero is null (``valid`` empty: none is). None past 2^31 bytes.
    """
    cdef Py_ssize_t np_ = len(parts), p, i, pos
    cdef int64_t total = 0, limit = (<int64_t>1) << 31, fixed_head = 0, fixed_tail = 0, ln
    cdef bint has_tail = tail.shape[0] != 0, has_valid = valid.shape[0] != 0
    cdef Py_ssize_t nulls = 0
    cdef const int64_t *cols[64]
    cdef const uint8_t *lits[64]
    cdef Py_ssize_t litlen[64]
    cdef const int64_t[::1] col
    keep = []
    if np_ > 64:
        raise ValueError("too many parts")
    if (has_tail and tail.shape[0] != n) or (has_valid and valid.shape[0] != n):
        raise ValueError("mask length differs from n")
    for p in range(np_):
        part = parts[p]
        if isinstance(part, bytes):
            keep.append(part)
            lits[p] = <const uint8_t *>(<bytes>part)
            litlen[p] = len(<bytes>part)
            cols[p] = NULL
            if p < head:
                fixed_head += litlen[p]
            else:
                fixed_tail += litlen[p]
        else:
            col = part
            if col.shape[0] != n:
                raise ValueError("part length differs from n")
            keep.append(col)
            cols[p] = &col[0] if n else NULL
            lits[p] = NULL
            litlen[p] = 0
    offsets = np.empty(n + 1, dtype=np.int32)
    cdef int32_t[::1] off = offsets
    with nogil:
        off[0] = 0
        for i in range(n):
            if has_valid and not valid[i]:
                nulls += 1
                off[i + 1] = <int32_t>total
                continue
            ln = fixed_head
            for p in range(head if head < np_ else np_):
                if cols[p] != NULL:
                    ln += _ndigits(cols[p][i])
            if not has_tail or tail[i]:
                ln += fixed_tail
                for p in range(head, np_):
                    if cols[p] != NULL:
                        ln += _ndigits(cols[p][i])
            total += ln
            if total >= limit:
                break
            off[i + 1] = <int32_t>total
    if total >= limit:
        return None
    data = np.empty(total, dtype=np.uint8)
    cdef uint8_t[::1] d = data
    bitmap = np.zeros((n + 7) // 8, dtype=np.uint8) if nulls else None
    cdef uint8_t[::1] bits
    if nulls:
        bits = bitmap
    cdef uint8_t *out = &d[0] if total else NULL
    cdef Py_ssize_t last
    with nogil:
        for i in range(n):
            if has_valid and not valid[i]:
                continue
            if nulls:
                bits[i >> 3] |= <uint8_t>(1 << (i & 7))
            pos = off[i]
            last = np_ if (not has_tail or tail[i]) else (head if head < np_ else np_)
            for p in range(last):
                if cols[p] != NULL:
                    pos += _decimal(out + pos, cols[p][i], _ndigits(cols[p][i]))
                elif litlen[p]:
                    memcpy(out + pos, lits[p], litlen[p])
                    pos += litlen[p]
    return offsets, data, bitmap, nulls


@cython.overflowcheck(False)
cdef inline int64_t _count_in(const uint8_t *p, int64_t n, uint8_t byte) noexcept nogil:
    # how many of the n bytes at p equal byte: eight at a time (a zero byte of w ^ pattern has its
    # high bit clear in ((w & 0x7f..) + 0x7f..) | w; the flags' sum by a multiply), then the tail
    cdef uint64_t lo7 = 0x7F7F7F7F7F7F7F7F, pat = byte * <uint64_t>0x0101010101010101, w, t
    cdef int64_t c = 0, k = 0
    while k + 8 <= n:
        memcpy(&w, p + k, 8)
        w ^= pat
        t = ~(((w & lo7) + lo7) | w | lo7)  # 0x80 in each byte of w that was zero
        c += <int64_t>(((t >> 7) * <uint64_t>0x0101010101010101) >> 56)
        k += 8
    while k < n:
        c += p[k] == byte
        k += 1
    return c


def count_byte(const int32_t[::1] base_off, const uint8_t[::1] base_data, uint8_t byte):
    """Per string of a string array (its offsets and data) how many times ``byte`` occurs in it (int64)."""
    cdef Py_ssize_t n = base_off.shape[0] - 1, i
    counts = np.zeros(max(n, 0), dtype=np.int64)
    cdef int64_t[::1] out = counts
    cdef const uint8_t *data = &base_data[0] if base_data.shape[0] else NULL
    with nogil:
        for i in range(n):
            out[i] = _count_in(data + base_off[i], base_off[i + 1] - base_off[i], byte) if base_off[i + 1] > base_off[i] else 0
    return counts


@cython.overflowcheck(False)
def take_suffixed(const int32_t[::1] base_off, const uint8_t[::1] base_data, const int64_t[::1] rows,
                  const uint8_t[::1] suffix):
    """(offsets, data) of the strings ``base[rows[i]] + suffix``; None past 2^31 bytes."""
    cdef Py_ssize_t n = rows.shape[0], nbase = base_off.shape[0] - 1, i, slen = suffix.shape[0]
    cdef int64_t total = 0, limit = (<int64_t>1) << 31, j, lo
    cdef Py_ssize_t bad = -1
    offsets = np.empty(n + 1, dtype=np.int32)
    cdef int32_t[::1] off = offsets
    with nogil:
        off[0] = 0
        for i in range(n):
            j = rows[i]
            if j < 0 or j >= nbase:
                bad = i
                break
            total += base_off[j + 1] - base_off[j] + slen
            if total >= limit:
                break
            off[i + 1] = <int32_t>total
    if bad >= 0:
        raise IndexError(f"row {bad}: index out of bounds")
    if total >= limit:
        return None
    data = np.empty(total, dtype=np.uint8)
    cdef uint8_t[::1] d = data
    with nogil:
        for i in range(n):
            j = rows[i]
            lo = off[i]
            if base_off[j + 1] > base_off[j]:
                memcpy(&d[lo], &base_data[base_off[j]], base_off[j + 1] - base_off[j])
            if slen:
                memcpy(&d[lo + base_off[j + 1] - base_off[j]], &suffix[0], slen)
    return offsets, data


@cython.overflowcheck(False)
def first_seen(const int64_t[::1] keys):
    """Per row an id of its key (int64), numbered 0, 1, ... in order of first appearance, as Arrow's
    ``dictionary_encode`` numbers them: one pass through an open-addressing hash table (linear probing,
    at most half full) of the keys seen so far and their ids."""
    cdef Py_ssize_t n = keys.shape[0], i
    cdef int shift = 64
    cdef uint64_t size = 1, mask, h
    cdef int64_t k, nxt = 0
    while size < 2 * <uint64_t>n or size < 8:
        size <<= 1
        shift -= 1
    mask = size - 1
    ids = np.empty(n, dtype=np.int64)
    slot_key = np.empty(size, dtype=np.int64)
    slot_id = np.full(size, -1, dtype=np.int64)  # -1: an empty slot
    cdef int64_t[::1] out = ids
    cdef int64_t[::1] sk = slot_key
    cdef int64_t[::1] sid = slot_id
    with nogil:
        for i in range(n):
            k = keys[i]
            h = (<uint64_t>k * <uint64_t>0x9E3779B97F4A7C15) >> shift  # Fibonacci hashing: the top bits
            while sid[h] >= 0 and sk[h] != k:
                h = (h + 1) & mask
            if sid[h] < 0:
                sk[h] = k
                sid[h] = nxt
                nxt += 1
            out[i] = sid[h]
    return ids


def gather_codes(const int64_t[::1] order, const uint8_t[::1] meta, const int64_t[::1] offset,
                 const int64_t[::1] nbytes):
    """The assembly's op, flags, offset and bytes columns in output order, in one pass over ``order``.

    In: per event (event order) ``meta`` (op code | flags code << 4 | offset valid << 6 | bytes valid
    << 7), offset and bytes; ``order`` (output row -> event). Out: ``(op, flag, offset, nbytes,
    bitmaps, nulls)``: int32 op codes, int32 flag codes (code - 1: -1 under a null), the int64 offsets
    and bytes, per column of the last three its validity bitmap (LSB first; None when no row is null)
    and its null count.
    """
    cdef Py_ssize_t n = order.shape[0], ne = meta.shape[0], i
    cdef Py_ssize_t nf = 0, no = 0, nb = 0, bad = -1
    cdef int64_t e
    cdef uint8_t m, f, bit
    if offset.shape[0] != ne or nbytes.shape[0] != ne:
        raise ValueError("column length differs from meta")
    op_arr = np.empty(n, dtype=np.int32)
    flag_arr = np.empty(n, dtype=np.int32)
    off_arr = np.empty(n, dtype=np.int64)
    bytes_arr = np.empty(n, dtype=np.int64)
    nbits = (n + 7) // 8
    fbits_arr, obits_arr, bbits_arr = (np.zeros(nbits, dtype=np.uint8) for _ in range(3))
    cdef int32_t[::1] op = op_arr
    cdef int32_t[::1] flag = flag_arr
    cdef int64_t[::1] off = off_arr
    cdef int64_t[::1] byt = bytes_arr
    cdef uint8_t[::1] fbits = fbits_arr
    cdef uint8_t[::1] obits = obits_arr
    cdef uint8_t[::1] bbits = bbits_arr
    with nogil:
        for i in range(n):
            e = order[i]
            if e < 0 or e >= ne:
                bad = i
                break
            m = meta[e]
            bit = <uint8_t>(1 << (i & 7))
            op[i] = m & 15
            f = (m >> 4) & 3
            flag[i] = <int32_t>f - 1
            off[i] = offset[e]
            byt[i] = nbytes[e]
            if f:
                fbits[i >> 3] |= bit
            else:
                nf += 1
            if m & 64:
                obits[i >> 3] |= bit
            else:
                no += 1
            if m & 128:
                bbits[i >> 3] |= bit
            else:
                nb += 1
    if bad >= 0:
        raise IndexError(f"row {bad}: index out of bounds")
    return (op_arr, flag_arr, off_arr, bytes_arr,
            (fbits_arr if nf else None, obits_arr if no else None, bbits_arr if nb else None), (nf, no, nb))


@cython.cdivision(False)
def handovers(const int64_t[::1] order, const int64_t[::1] key, const int64_t[::1] time, const int8_t[::1] kind,
              const uint8_t[::1] has_machine, const int64_t[::1] machine):
    """(exit rows, handover times) of ``traces.importers.lifecycle._handovers_pure`` in one pass over ``order``
    (start and exit rows by key, time, row): each exit (kind 1) that follows a start (kind 0) of its key
    on another machine, both naming one, its time not 2^63-1; the handover is halfway between the two times."""
    cdef Py_ssize_t n = order.shape[0], nrows = key.shape[0], i, cnt = 0, bad = -1
    cdef int64_t p, c, a, b, never = 0x7FFFFFFFFFFFFFFF
    if time.shape[0] != nrows or kind.shape[0] != nrows or has_machine.shape[0] != nrows or machine.shape[0] != nrows:
        raise ValueError("column lengths differ")
    rows_arr = np.empty(max(n - 1, 0), dtype=np.int64)
    at_arr = np.empty(max(n - 1, 0), dtype=np.int64)
    cdef int64_t[::1] rows = rows_arr
    cdef int64_t[::1] at = at_arr
    with nogil:
        for i in range(n - 1):
            p = order[i]
            c = order[i + 1]
            if p < 0 or p >= nrows or c < 0 or c >= nrows:
                bad = i
                break
            if (key[p] == key[c] and kind[p] == 0 and kind[c] == 1 and has_machine[p] and has_machine[c]
                    and machine[p] != machine[c] and time[c] != never):
                a = time[p]
                b = time[c]
                rows[cnt] = c
                at[cnt] = a + (b - a) // 2
                cnt += 1
    if bad >= 0:
        raise IndexError(f"position {bad}: row out of bounds")
    return rows_arr[:cnt].copy(), at_arr[:cnt].copy()
