/*
 * memcg-replay kernel-check helper: one trace task, as a real process in the VM.
 *
 * In: commands, one per line, on a FIFO (`helper serve CMD_FIFO ACK_FIFO [CGROUP_PROCS]`);
 * or a single command on the command line (`helper create PATH BYTES` etc.).
 * Out: the memory effects of each command, held until the task exits, and one
 * acknowledgement line ("ok" or "err <errno> <what>") per command on ACK_FIFO.
 *
 * `serve` starts in the VM shell's cgroup (the root), faults and mlocks every page
 * of its own (stack, data, bss, text) there, and only then joins the task's cgroup
 * by writing 0 to CGROUP_PROCS, before its first ack. So the task's cgroup is
 * charged with what the trace's commands fault, write or map, the way the kernel
 * charges a real workload, and not with the helper's own pages, which the trace
 * does not describe (a moved task's pages stay charged where they were faulted, so
 * they would keep a cgroup the task left dying until it exits). Busybox cannot hold
 * anonymous memory or mappings, or write incompressible data, which is why this exists.
 *
 * Commands (sizes and offsets in bytes):
 *   anon REGION BYTES           grow anon region REGION by BYTES, faulting every page
 *   anonfree REGION OFF BYTES   munlock + MADV_DONTNEED a range of REGION (BYTES<0: whole region)
 *   touch REGION                read every page of REGION (swap-in of a live owner)
 *   write PATH OFF BYTES        pwrite incompressible data (extends the file)
 *   read PATH OFF BYTES         pread (BYTES<0: to end of file)
 *   map PATH OFF BYTES          mmap shared read-only, fault every page, hold
 *   unmap PATH                  drop every mapping of PATH
 *   mlock OBJ OFF BYTES         mlock a range of an anon region or mapped file
 *   munlock OBJ OFF BYTES       munlock it
 *   create PATH BYTES           write a file, fsync it, and drop it from the page cache
 *   sock NAME HOLDER            open a TCP socket (sk_memcg = this task's memcg) and hand it,
 *                               over the unix socket HOLDER, to the holder process
 *   exit                        exit (the shell then reaps the process)
 *   kpeek SYMBOL                print the int at a kernel symbol (/proc/kallsyms address,
 *                               read through /proc/kcore): e.g. shrinker_nr_max
 *   zombies CGROUP FROM TO FILE child cgroups CGROUP/z<i> for FROM <= i < TO, each charged
 *                               one page of FILE (offset i pages) by a child forked into it
 *                               (clone3 CLONE_INTO_CGROUP), then removed: dying memcgs (cost.py)
 *
 * `helper hold HOLDER` is that holder: started by init in the root cgroup, it keeps
 * every socket handed to it (SCM_RIGHTS) until `helper sockclose NAME HOLDER` asks it to
 * close one, so a socket outlives its opener the way an inherited or passed fd does.
 *
 * Kept small and static (no stdio buffers held, no malloc arena) so that the
 * task's own footprint stays a few pages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <elf.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096L
#define CHUNK (64L * 1024)
#define MAX_OBJS 64
#define MAX_PARTS 32

/* One named object: an anon region (grown in parts) or the mappings of one file. */
struct obj {
	char name[128];
	int is_file;
	int nparts;
	char *base[MAX_PARTS];
	long len[MAX_PARTS];
	long off[MAX_PARTS]; /* file offset of each mapping; region offset of each anon part */
};

static struct obj objs[MAX_OBJS];
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* xorshift64*: cheap incompressible bytes (zram and zswap must not shrink them). */
static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static void fill_random(char *p, long n)
{
	for (long i = 0; i + 8 <= n; i += 8) {
		uint64_t v = rng_next();
		memcpy(p + i, &v, 8);
	}
}

static struct obj *find_obj(const char *name, int create, int is_file)
{
	struct obj *free_slot = NULL;
	for (int i = 0; i < MAX_OBJS; i++) {
		if (objs[i].name[0] && strcmp(objs[i].name, name) == 0)
			return &objs[i];
		if (!objs[i].name[0] && !free_slot)
			free_slot = &objs[i];
	}
	if (!create || !free_slot)
		return NULL;
	snprintf(free_slot->name, sizeof(free_slot->name), "%s", name);
	free_slot->is_file = is_file;
	free_slot->nparts = 0;
	return free_slot;
}

static long obj_size(const struct obj *o)
{
	long n = 0;
	for (int i = 0; i < o->nparts; i++)
		n += o->len[i];
	return n;
}

static int cmd_anon(const char *name, long bytes)
{
	struct obj *o = find_obj(name, 1, 0);
	if (!o || o->nparts == MAX_PARTS)
		return ENOMEM;
	long len = (bytes + PAGE - 1) / PAGE * PAGE;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	/* the model charges 4 KiB pages; keep the kernel from backing this with THP */
	madvise(p, len, MADV_NOHUGEPAGE);
	fill_random(p, len);
	o->off[o->nparts] = obj_size(o);
	o->base[o->nparts] = p;
	o->len[o->nparts++] = len;
	return 0;
}

/* Apply fn to the pages of [off, off+bytes) of object o (bytes < 0: all of it). */
static int for_range(struct obj *o, long off, long bytes, int (*fn)(char *, long))
{
	long end = bytes < 0 ? (long)1 << 62 : off + bytes;
	for (int i = 0; i < o->nparts; i++) {
		long s = o->off[i] > off ? o->off[i] : off;
		long e = o->off[i] + o->len[i] < end ? o->off[i] + o->len[i] : end;
		s = s / PAGE * PAGE;
		e = (e + PAGE - 1) / PAGE * PAGE;
		if (e > o->off[i] + o->len[i])
			e = o->off[i] + o->len[i];
		if (s < e && fn(o->base[i] + (s - o->off[i]), e - s) != 0)
			return errno;
	}
	return 0;
}

/* anon_free frees what it names, as munmap would, mlocked or not: MADV_DONTNEED alone fails with
 * EINVAL on a VM_LOCKED range (madvise_dontneed_free_valid_vma), so munlock it first */
static int do_dontneed(char *p, long n)
{
	munlock(p, n);
	return madvise(p, n, MADV_DONTNEED);
}
static int do_mlock(char *p, long n) { return mlock(p, n); }
static int do_munlock(char *p, long n) { return munlock(p, n); }

static int do_touch(char *p, long n)
{
	volatile char sink = 0;
	for (long i = 0; i < n; i += PAGE)
		sink ^= p[i];
	(void)sink;
	return 0;
}

static int write_range(int fd, long off, long bytes)
{
	char *buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return errno;
	int err = 0;
	for (long done = 0; done < bytes && !err; ) {
		long n = bytes - done < CHUNK ? bytes - done : CHUNK;
		fill_random(buf, n);
		if (pwrite(fd, buf, n, off + done) != n)
			err = errno ? errno : EIO;
		done += n;
	}
	munmap(buf, CHUNK); /* transient buffer: do not leave anon charged to the task */
	return err;
}

static int cmd_write(const char *path, long off, long bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return errno;
	int err = write_range(fd, off, bytes);
	close(fd);
	return err;
}

static int cmd_read(const char *path, long off, long bytes)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno;
	char *buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int err = buf == MAP_FAILED ? errno : 0;
	for (long done = 0; !err && (bytes < 0 || done < bytes); ) {
		long want = bytes < 0 || bytes - done > CHUNK ? CHUNK : bytes - done;
		long n = pread(fd, buf, want, off + done);
		if (n < 0)
			err = errno;
		if (n <= 0)
			break;
		done += n;
	}
	if (buf != MAP_FAILED)
		munmap(buf, CHUNK);
	close(fd);
	return err;
}

static int cmd_map(const char *path, long off, long bytes)
{
	struct obj *o = find_obj(path, 1, 1);
	if (!o || o->nparts == MAX_PARTS)
		return ENOMEM;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno;
	struct stat st;
	fstat(fd, &st);
	long start = off / PAGE * PAGE;
	long len = (bytes < 0 ? st.st_size - start : off + bytes - start);
	len = (len + PAGE - 1) / PAGE * PAGE;
	char *p = len > 0 ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, start) : MAP_FAILED;
	int err = p == MAP_FAILED ? (errno ? errno : EINVAL) : 0;
	close(fd);
	if (err)
		return err;
	do_touch(p, len);
	o->base[o->nparts] = p;
	o->off[o->nparts] = start;
	o->len[o->nparts++] = len;
	return 0;
}

static int cmd_unmap(const char *path)
{
	struct obj *o = find_obj(path, 0, 1);
	if (!o)
		return ENOENT;
	for (int i = 0; i < o->nparts; i++)
		munmap(o->base[i], o->len[i]);
	o->name[0] = 0;
	return 0;
}

static int cmd_range(const char *name, long off, long bytes, int (*fn)(char *, long))
{
	struct obj *o = find_obj(name, 0, 0);
	return o ? for_range(o, off, bytes, fn) : ENOENT;
}

static int cmd_create(const char *path, long bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return errno;
	int err = write_range(fd, 0, bytes);
	/* on disk, not cached: the trace's file_create of a non-shmem file */
	if (!err && fsync(fd) != 0)
		err = errno;
	if (!err)
		err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return err;
}

/* ---- sockets that outlive their opener ---------------------------------------------- */

static int holder_connect(const char *holder)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, holder, sizeof(a.sun_path) - 1);
	int u = socket(AF_UNIX, SOCK_STREAM, 0);
	if (u < 0)
		return -1;
	if (connect(u, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(u);
		return -1;
	}
	return u;
}

/* Send TEXT (and FD when >= 0) to the holder; wait for its one-byte reply. */
static int holder_send(const char *holder, const char *text, int fd)
{
	int u = holder_connect(holder);
	if (u < 0)
		return errno;
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text) + 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	char reply = 0;
	int err = sendmsg(u, &m, 0) < 0 ? errno : 0;
	if (!err && read(u, &reply, 1) != 1)
		err = EIO;
	close(u);
	return err ? err : (reply == 'k' ? 0 : ENOENT);
}

/* mem_cgroup_sk_alloc() runs in socket(): the socket references this task's memcg. */
static int cmd_sock(const char *name, const char *holder)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return errno;
	char text[160];
	snprintf(text, sizeof(text), "keep %s", name);
	int err = holder_send(holder, text, fd);
	close(fd); /* the holder's copy keeps the socket */
	return err;
}

#define MAX_SOCKS 64
static struct { char name[160]; int fd; } held[MAX_SOCKS];

/* One request: "keep NAME" + fd, or "close NAME". Replies 'k' (done) or 'n' (unknown). */
static void hold_one(int c)
{
	char text[160] = {0}, cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = text, .iov_len = sizeof(text) - 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	char reply = 'n';
	if (recvmsg(c, &m, 0) > 0) {
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		int fd = -1;
		if (h && h->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(h), sizeof(int));
		for (int i = 0; i < MAX_SOCKS; i++) {
			if (!strncmp(text, "keep ", 5) && fd >= 0 && !held[i].name[0]) {
				snprintf(held[i].name, sizeof(held[i].name), "%s", text + 5);
				held[i].fd = fd, reply = 'k';
				break;
			}
			if (!strncmp(text, "close ", 6) && !strcmp(held[i].name, text + 6)) {
				close(held[i].fd); /* the last reference: mem_cgroup_sk_free() */
				held[i].name[0] = 0, reply = 'k';
				break;
			}
		}
	}
	if (write(c, &reply, 1) != 1)
		_exit(3);
	close(c); /* the accepted unix socket was allocated in the client's memcg: let it go */
}

static int hold(const char *holder)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, holder, sizeof(a.sun_path) - 1);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 8) != 0)
		return 2;
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c >= 0)
			hold_one(c);
	}
}

/* Run one command line; returns 0 or an errno value. */
/* The address of SYMBOL in /proc/kallsyms (root sees real addresses), or 0. */
static unsigned long kallsyms_addr(const char *symbol)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], name[256], type;
	unsigned long addr, found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx %c %255s", &addr, &type, name) == 3 && !strcmp(name, symbol))
			found = addr;
	fclose(f);
	return found;
}

/* Print the int at SYMBOL: the PT_LOAD segment of /proc/kcore that maps its address. */
static int cmd_kpeek(const char *symbol)
{
	unsigned long addr = kallsyms_addr(symbol);
	if (!addr)
		return ENOENT;
	int fd = open("/proc/kcore", O_RDONLY);
	if (fd < 0)
		return errno;
	Elf64_Ehdr eh;
	int err = ENXIO;
	if (pread(fd, &eh, sizeof(eh), 0) == sizeof(eh)) {
		for (int i = 0; i < eh.e_phnum; i++) {
			Elf64_Phdr ph;
			if (pread(fd, &ph, sizeof(ph), eh.e_phoff + (long)i * eh.e_phentsize) != sizeof(ph))
				break;
			if (ph.p_type != PT_LOAD || addr < ph.p_vaddr || addr + 4 > ph.p_vaddr + ph.p_memsz)
				continue;
			int value;
			if (pread(fd, &value, sizeof(value), ph.p_offset + (addr - ph.p_vaddr)) != sizeof(value)) {
				err = errno ? errno : EIO;
				break;
			}
			printf("%s %d\n", symbol, value);
			err = 0;
			break;
		}
	}
	close(fd);
	return err;
}

/* A child started inside the cgroup open as cgfd writes one page at page offset i of fd. */
static int charge_in(int cgfd, int fd, long i)
{
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	args.flags = CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = (unsigned long)cgfd;
	long pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0)
		return errno;
	if (pid == 0) {
		static char page[PAGE];
		memset(page, 'z', sizeof(page));
		_exit(pwrite(fd, page, PAGE, i * PAGE) == PAGE ? 0 : 1);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		return errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EIO;
}

/* Dying memcgs z<from>..z<to-1>: mkdir CGROUP/z<i>, charge one page of FILE from inside, rmdir. */
static int cmd_zombies(const char *cgroup, long from, long to, const char *file)
{
	char path[512];
	int fd = open(file, O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		return errno;
	for (long i = from; i < to; i++) {
		snprintf(path, sizeof(path), "%s/z%ld", cgroup, i);
		if (mkdir(path, 0755) < 0)
			return errno;
		int cgfd = open(path, O_RDONLY | O_DIRECTORY);
		if (cgfd < 0)
			return errno;
		int err = charge_in(cgfd, fd, i);
		close(cgfd);
		if (err)
			return err;
		/* the reaped child may still count as a member for a moment: retry EBUSY */
		for (int tries = 0; rmdir(path) < 0; tries++) {
			if (errno != EBUSY || tries == 1000)
				return errno;
			usleep(1000);
		}
	}
	close(fd);
	return 0;
}

static int run(char *line)
{
	char *argv[6] = {0};
	int argc = 0;
	for (char *tok = strtok(line, " \t\n"); tok && argc < 6; tok = strtok(NULL, " \t\n"))
		argv[argc++] = tok;
	if (argc == 0)
		return 0;
	long a2 = argc > 2 ? atol(argv[2]) : -1, a3 = argc > 3 ? atol(argv[3]) : -1;
	const char *c = argv[0];
	if (!strcmp(c, "exit"))
		exit(0);
	if (!strcmp(c, "anon") && argc == 3) return cmd_anon(argv[1], a2);
	if (!strcmp(c, "anonfree") && argc == 4) return cmd_range(argv[1], a2, a3, do_dontneed);
	if (!strcmp(c, "touch") && argc == 2) return cmd_range(argv[1], 0, -1, do_touch);
	if (!strcmp(c, "write") && argc == 4) return cmd_write(argv[1], a2, a3);
	if (!strcmp(c, "read") && argc == 4) return cmd_read(argv[1], a2, a3);
	if (!strcmp(c, "map") && argc == 4) return cmd_map(argv[1], a2, a3);
	if (!strcmp(c, "unmap") && argc == 2) return cmd_unmap(argv[1]);
	if (!strcmp(c, "mlock") && argc == 4) return cmd_range(argv[1], a2, a3, do_mlock);
	if (!strcmp(c, "munlock") && argc == 4) return cmd_range(argv[1], a2, a3, do_munlock);
	if (!strcmp(c, "create") && argc == 3) return cmd_create(argv[1], a2);
	if (!strcmp(c, "kpeek") && argc == 2) return cmd_kpeek(argv[1]);
	if (!strcmp(c, "zombies") && argc == 5) return cmd_zombies(argv[1], a2, a3, argv[4]);
	if (!strcmp(c, "sock") && argc == 3) return cmd_sock(argv[1], argv[2]);
	if (!strcmp(c, "sockclose") && argc == 3) {
		char text[160];
		snprintf(text, sizeof(text), "close %s", argv[1]);
		return holder_send(argv[2], text, -1);
	}
	return EINVAL;
}

static void ack(const char *fifo, int err)
{
	char msg[64];
	int n = err ? snprintf(msg, sizeof(msg), "err %d\n", err) : snprintf(msg, sizeof(msg), "ok\n");
	int fd = open(fifo, O_WRONLY);
	if (fd >= 0) {
		if (write(fd, msg, n) != n)
			_exit(3);
		close(fd);
	}
}

/* Join a cgroup: write "0" (this process) to its cgroup.procs; 0 or the errno. */
static int join_cgroup(const char *procs)
{
	int fd = open(procs, O_WRONLY);
	if (fd < 0)
		return errno;
	int err = write(fd, "0", 1) == 1 ? 0 : errno;
	close(fd);
	return err;
}

/* Serve commands from cmd_fifo until "exit"; one ack per command line. With procs
 * (a cgroup.procs path), join that cgroup first, after faulting in our own pages. */
static int serve(const char *cmd_fifo, const char *ack_fifo, const char *procs)
{
	static char buf[4096];
	/* the helper's own pages (stack, data, bss, text) are not the trace's memory: fault
	 * every one of them now (MCL_CURRENT populates; writable private ones are written,
	 * so data and bss get their anon copies), in the cgroup the shell started us in,
	 * and lock them, so reclaim (memory.reclaim, limits, swap) never takes or swaps them;
	 * then join the task's cgroup, which is charged only with what the trace's commands
	 * do. The trace's own regions and mappings are made later and stay unlocked (no
	 * MCL_FUTURE) */
	mlockall(MCL_CURRENT);
	int err = procs ? join_cgroup(procs) : 0;
	ack(ack_fifo, err); /* ready: the shell waits for this before the next step */
	if (err)
		return 2;
	for (;;) {
		int fd = open(cmd_fifo, O_RDONLY);
		if (fd < 0)
			return 2;
		long n = 0, r;
		while (n < (long)sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
			n += r;
		close(fd);
		buf[n] = 0;
		for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (strncmp(line, "exit", 4) == 0) {
				ack(ack_fifo, 0); /* acknowledge first: the shell then waits for the pid */
				exit(0);
			}
			ack(ack_fifo, run(line));
		}
	}
}

int main(int argc, char **argv)
{
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "serve"))
		return serve(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
	if (argc == 3 && !strcmp(argv[1], "hold"))
		return hold(argv[2]);
	if (argc >= 2) {
		char line[1024] = "";
		for (int i = 1; i < argc; i++) {
			strncat(line, argv[i], sizeof(line) - strlen(line) - 2);
			strcat(line, " ");
		}
		int err = run(line);
		if (err)
			fprintf(stderr, "helper: %s: %s\n", argv[1], strerror(err));
		return err ? 1 : 0;
	}
	fprintf(stderr, "usage: helper serve CMD_FIFO ACK_FIFO [CGROUP_PROCS] | helper COMMAND ARGS...\n");
	return 2;
}
