/*
 * layerbox_sys: the few Linux system calls Node does not expose.
 * mknod, extended attributes on links, mount/umount, the new mount API for
 * overlayfs (no page-size limit on lowerdir), syncfs, renameat2, persistent
 * network namespaces, and the *at family on directory fds (openat2, fstatat,
 * mkdirat, mknodat, symlinkat, linkat, readlinkat, unlinkat, fchownat,
 * utimensat, getdents) that confined tree walks are built from.
 * Every function is synchronous, takes plain strings/Buffers and throws an
 * Error carrying Node-style `code`, `errno`, `syscall` and `path` on failure.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sched.h>
#include <pthread.h>
#include <dirent.h>
#include <limits.h>
#include <linux/openat2.h>

#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef FSCONFIG_SET_FLAG
#define FSCONFIG_SET_FLAG 0
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif

#define PATH_MAX_ARG 4096
#define MAX_STR (1 << 20)

static const char *errno_code(int e) {
  switch (e) {
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EIO: return "EIO";
    case EBADF: return "EBADF"; case ENOMEM: return "ENOMEM"; case EACCES: return "EACCES";
    case EFAULT: return "EFAULT"; case EBUSY: return "EBUSY"; case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV"; case ENODEV: return "ENODEV"; case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR"; case EINVAL: return "EINVAL"; case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS"; case EMLINK: return "EMLINK"; case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG"; case ENOSYS: return "ENOSYS";
    case ENOTEMPTY: return "ENOTEMPTY"; case ELOOP: return "ELOOP"; case ENODATA: return "ENODATA";
    case ENOTSUP: return "ENOTSUP"; case E2BIG: return "E2BIG"; case EDQUOT: return "EDQUOT";
    case EAGAIN: return "EAGAIN"; case EMFILE: return "EMFILE"; case ENFILE: return "ENFILE";
    case ETXTBSY: return "ETXTBSY"; case EFBIG: return "EFBIG";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, int e, const char *syscall_name, const char *path) {
  char msg[PATH_MAX_ARG + 256];
  const char *code = errno_code(e);
  if (path) snprintf(msg, sizeof msg, "%s: %s, %s '%s'", code, strerror(e), syscall_name, path);
  else snprintf(msg, sizeof msg, "%s: %s, %s", code, strerror(e), syscall_name);
  napi_value m, c, err, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &err);
  napi_set_named_property(env, err, "code", c);
  napi_create_int32(env, -e, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, err, "path", v);
  }
  napi_throw(env, err);
  return NULL;
}

/* Copies a JS string argument into a malloc'd buffer (NULL for null/undefined). */
static int get_str(napi_env env, napi_value v, char **out, int optional) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (optional && (t == napi_null || t == napi_undefined)) { *out = NULL; return 1; }
  if (t != napi_string) { napi_throw_type_error(env, NULL, "expected a string argument"); return 0; }
  size_t len;
  napi_get_value_string_utf8(env, v, NULL, 0, &len);
  if (len > MAX_STR) { napi_throw_range_error(env, NULL, "string argument too long"); return 0; }
  char *s = malloc(len + 1);
  if (!s) { napi_throw_error(env, NULL, "out of memory"); return 0; }
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) { free(s); napi_throw_type_error(env, NULL, "string argument contains NUL"); return 0; }
  *out = s;
  return 1;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) { napi_throw_type_error(env, NULL, "expected a number"); return 0; }
  return 1;
}

#define ARGS(n) size_t argc = n; napi_value argv[n]; napi_get_cb_info(env, info, &argc, argv, NULL, NULL); \
  if (argc < n) { napi_throw_type_error(env, NULL, "missing arguments"); return NULL; }

static napi_value undef(napi_env env) { napi_value u; napi_get_undefined(env, &u); return u; }

/* mknod(path, mode, major, minor) — mode includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
static napi_value Mknod(napi_env env, napi_callback_info info) {
  ARGS(4);
  char *path; uint32_t mode, maj, min;
  if (!get_str(env, argv[0], &path, 0)) return NULL;
  if (!get_u32(env, argv[1], &mode) || !get_u32(env, argv[2], &maj) || !get_u32(env, argv[3], &min)) { free(path); return NULL; }
  if (mknod(path, mode, makedev(maj, min)) != 0) { int e = errno; throw_errno(env, e, "mknod", path); free(path); return NULL; }
  free(path);
  return undef(env);
}

/* lsetxattr(path, name, value: Buffer) */
static napi_value Lsetxattr(napi_env env, napi_callback_info info) {
  ARGS(3);
  char *path, *name; void *data; size_t len;
  if (!get_str(env, argv[0], &path, 0)) return NULL;
  if (!get_str(env, argv[1], &name, 0)) { free(path); return NULL; }
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) { free(path); free(name); napi_throw_type_error(env, NULL, "value must be a Buffer"); return NULL; }
  if (lsetxattr(path, name, data, len, 0) != 0) { int e = errno; throw_errno(env, e, "lsetxattr", path); free(path); free(name); return NULL; }
  free(path); free(name);
  return undef(env);
}

/* fsetxattr(fd, name, value: Buffer) */
static napi_value Fsetxattr(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd; char *name; void *data; size_t len;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok) { napi_throw_type_error(env, NULL, "fd must be a number"); return NULL; }
  if (!get_str(env, argv[1], &name, 0)) return NULL;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) { free(name); napi_throw_type_error(env, NULL, "value must be a Buffer"); return NULL; }
  if (fsetxattr(fd, name, data, len, 0) != 0) { int e = errno; throw_errno(env, e, "fsetxattr", name); free(name); return NULL; }
  free(name);
  return undef(env);
}

/* lgetxattr(path, name) -> Buffer | null (null when the attribute is absent) */
static napi_value Lgetxattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *path, *name;
  if (!get_str(env, argv[0], &path, 0)) return NULL;
  if (!get_str(env, argv[1], &name, 0)) { free(path); return NULL; }
  char stackbuf[256];
  ssize_t n = lgetxattr(path, name, stackbuf, sizeof stackbuf);
  char *buf = stackbuf;
  if (n < 0 && errno == ERANGE) {
    ssize_t need = lgetxattr(path, name, NULL, 0);
    if (need >= 0) {
      buf = malloc(need + 1);
      n = buf ? lgetxattr(path, name, buf, need) : -1;
    }
  }
  napi_value result;
  if (n < 0) {
    int e = errno;
    if (buf != stackbuf) free(buf);
    if (e == ENODATA || e == ENOTSUP) { free(path); free(name); napi_get_null(env, &result); return result; }
    throw_errno(env, e, "lgetxattr", path); free(path); free(name); return NULL;
  }
  void *out;
  napi_create_buffer_copy(env, n, buf, &out, &result);
  if (buf != stackbuf) free(buf);
  free(path); free(name);
  return result;
}

/* llistxattr(path) -> string[] */
static napi_value Llistxattr(napi_env env, napi_callback_info info) {
  ARGS(1);
  char *path;
  if (!get_str(env, argv[0], &path, 0)) return NULL;
  char stackbuf[1024];
  char *buf = stackbuf;
  ssize_t n = llistxattr(path, stackbuf, sizeof stackbuf);
  if (n < 0 && errno == ERANGE) {
    ssize_t need = llistxattr(path, NULL, 0);
    if (need >= 0) { buf = malloc(need + 1); n = buf ? llistxattr(path, buf, need) : -1; }
  }
  napi_value arr;
  napi_create_array(env, &arr);
  if (n < 0) {
    int e = errno;
    if (buf != stackbuf) free(buf);
    if (e == ENOTSUP) { free(path); return arr; }
    throw_errno(env, e, "llistxattr", path); free(path); return NULL;
  }
  uint32_t idx = 0;
  for (ssize_t off = 0; off < n;) {
    size_t l = strnlen(buf + off, n - off);
    napi_value s;
    napi_create_string_utf8(env, buf + off, l, &s);
    napi_set_element(env, arr, idx++, s);
    off += l + 1;
  }
  if (buf != stackbuf) free(buf);
  free(path);
  return arr;
}

/* lremovexattr(path, name) — absent attributes are not an error */
static napi_value Lremovexattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *path, *name;
  if (!get_str(env, argv[0], &path, 0)) return NULL;
  if (!get_str(env, argv[1], &name, 0)) { free(path); return NULL; }
  if (lremovexattr(path, name) != 0 && errno != ENODATA) { int e = errno; throw_errno(env, e, "lremovexattr", path); free(path); free(name); return NULL; }
  free(path); free(name);
  return undef(env);
}

/* mount(source, target, fstype, flags, data) — source, fstype, data may be null */
static napi_value Mount(napi_env env, napi_callback_info info) {
  ARGS(5);
  char *src = NULL, *tgt = NULL, *fst = NULL, *data = NULL; uint32_t flags;
  napi_value r = NULL;
  if (!get_str(env, argv[0], &src, 1) || !get_str(env, argv[1], &tgt, 0) || !get_str(env, argv[2], &fst, 1)) goto out;
  if (!get_u32(env, argv[3], &flags) || !get_str(env, argv[4], &data, 1)) goto out;
  if (mount(src, tgt, fst, flags, data) != 0) { throw_errno(env, errno, "mount", tgt); goto out; }
  r = undef(env);
out:
  free(src); free(tgt); free(fst); free(data);
  return r;
}

/* umount2(target, flags) */
static napi_value Umount2(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *tgt; uint32_t flags;
  if (!get_str(env, argv[0], &tgt, 0)) return NULL;
  if (!get_u32(env, argv[1], &flags)) { free(tgt); return NULL; }
  if (umount2(tgt, flags) != 0) { int e = errno; throw_errno(env, e, "umount2", tgt); free(tgt); return NULL; }
  free(tgt);
  return undef(env);
}

/*
 * mountOverlay(target, lowers: string[], upper|null, work|null, readonly: bool)
 * Uses the new mount API (fsopen/fsconfig "lowerdir+", Linux >= 6.8) so the number of
 * layers is not limited by the one-page mount data; returns true on success, or false
 * when the kernel lacks the API (the caller then falls back to mount(2)).
 */
static napi_value MountOverlay(napi_env env, napi_callback_info info) {
  ARGS(5);
  char *tgt = NULL, *upper = NULL, *work = NULL;
  napi_value r = NULL, result;
  bool ro = false;
  int fsfd = -1, mfd = -1;
  uint32_t n = 0;
  if (!get_str(env, argv[0], &tgt, 0) || !get_str(env, argv[2], &upper, 1) || !get_str(env, argv[3], &work, 1)) goto out;
  napi_get_value_bool(env, argv[4], &ro);
  napi_get_array_length(env, argv[1], &n);
  fsfd = syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0) {
    if (errno == ENOSYS) { napi_get_boolean(env, false, &result); r = result; goto out; }
    throw_errno(env, errno, "fsopen", tgt); goto out;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value el; char *l;
    napi_get_element(env, argv[1], i, &el);
    if (!get_str(env, el, &l, 0)) goto out;
    if (syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "lowerdir+", l, 0) != 0) {
      int e = errno; free(l);
      if (e == EINVAL && i == 0) { napi_get_boolean(env, false, &result); r = result; goto out; } /* no lowerdir+ */
      throw_errno(env, e, "fsconfig lowerdir+", tgt); goto out;
    }
    free(l);
  }
  if (upper && syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) != 0) { throw_errno(env, errno, "fsconfig upperdir", upper); goto out; }
  if (work && syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) != 0) { throw_errno(env, errno, "fsconfig workdir", work); goto out; }
  /* layers must be expressible as tars: no renamed-dir redirects, no metadata-only copy-ups */
  if (syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "index", "off", 0) != 0) { /* older kernels: ignore */ }
  if (syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "redirect_dir", "off", 0) != 0) { /* ignore */ }
  if (syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "metacopy", "off", 0) != 0) { /* ignore */ }
  if (syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) { throw_errno(env, errno, "fsconfig create", tgt); goto out; }
  mfd = syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, ro ? MOUNT_ATTR_RDONLY : 0);
  if (mfd < 0) { throw_errno(env, errno, "fsmount", tgt); goto out; }
  if (syscall(SYS_move_mount, mfd, "", AT_FDCWD, tgt, MOVE_MOUNT_F_EMPTY_PATH) != 0) { throw_errno(env, errno, "move_mount", tgt); goto out; }
  napi_get_boolean(env, true, &result);
  r = result;
out:
  if (mfd >= 0) close(mfd);
  if (fsfd >= 0) close(fsfd);
  free(tgt); free(upper); free(work);
  return r;
}

/* syncfs(path): flush the file system holding path */
static napi_value Syncfs(napi_env env, napi_callback_info info) {
  ARGS(1);
  char *path;
  if (!get_str(env, argv[0], &path, 0)) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  if (fd < 0) { int e = errno; throw_errno(env, e, "open", path); free(path); return NULL; }
  if (syncfs(fd) != 0) { int e = errno; close(fd); throw_errno(env, e, "syncfs", path); free(path); return NULL; }
  close(fd); free(path);
  return undef(env);
}

/* renameat2(old, new, flags): 1 = RENAME_NOREPLACE, 2 = RENAME_EXCHANGE */
static napi_value Renameat2(napi_env env, napi_callback_info info) {
  ARGS(3);
  char *a, *b; uint32_t flags;
  if (!get_str(env, argv[0], &a, 0)) return NULL;
  if (!get_str(env, argv[1], &b, 0)) { free(a); return NULL; }
  if (!get_u32(env, argv[2], &flags)) { free(a); free(b); return NULL; }
  if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags) != 0) { int e = errno; throw_errno(env, e, "renameat2", a); free(a); free(b); return NULL; }
  free(a); free(b);
  return undef(env);
}

/*
 * newNetns(path): a new network namespace bind-mounted on the existing file `path`, as
 * `ip netns add` makes it, without a process: a short-lived thread unshares its own network
 * namespace (allowed in a multi-threaded process for CLONE_NEWNET) and bind-mounts
 * /proc/thread-self/ns/net on the file; the mount keeps the namespace once the thread ends.
 */
struct netns_job { const char *path; int err; const char *step; };

static void *netns_thread(void *arg) {
  struct netns_job *j = arg;
  if (unshare(CLONE_NEWNET) != 0) { j->err = errno; j->step = "unshare"; return NULL; }
  if (mount("/proc/thread-self/ns/net", j->path, "none", MS_BIND, NULL) != 0) { j->err = errno; j->step = "mount"; return NULL; }
  return NULL;
}

static napi_value NewNetns(napi_env env, napi_callback_info info) {
  ARGS(1);
  char *path;
  if (!get_str(env, argv[0], &path, 0)) return NULL;
  struct netns_job j = { path, 0, NULL };
  pthread_t t;
  int r = pthread_create(&t, NULL, netns_thread, &j);
  if (r != 0) { throw_errno(env, r, "pthread_create", path); free(path); return NULL; }
  pthread_join(t, NULL);
  if (j.err) { throw_errno(env, j.err, j.step, path); free(path); return NULL; }
  free(path);
  return undef(env);
}

/*
 * seqpacketConnect(dir, name) -> fd: connects a SOCK_SEQPACKET unix socket at dir/name
 * (conmon's attach socket). The path goes through /proc/self/fd so long store paths fit
 * in sun_path. Node has no SEQPACKET sockets; the caller reads and writes the fd directly.
 */
static napi_value SeqpacketConnect(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *dir, *name;
  if (!get_str(env, argv[0], &dir, 0)) return NULL;
  if (!get_str(env, argv[1], &name, 0)) { free(dir); return NULL; }
  int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) { int e = errno; throw_errno(env, e, "open", dir); free(dir); free(name); return NULL; }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  int n = snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dfd, name);
  if (n < 0 || (size_t)n >= sizeof addr.sun_path) { close(dfd); free(dir); free(name); napi_throw_range_error(env, NULL, "socket name too long"); return NULL; }
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) { int e = errno; close(dfd); throw_errno(env, e, "socket", dir); free(dir); free(name); return NULL; }
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    int e = errno; close(fd); close(dfd); throw_errno(env, e, "connect", dir); free(dir); free(name); return NULL;
  }
  close(dfd); free(dir); free(name);
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

/* shutdown(fd, how): 0 = SHUT_RD, 1 = SHUT_WR, 2 = SHUT_RDWR; errors ignored (peer gone) */
static napi_value Shutdown(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd, how;
  napi_get_value_int32(env, argv[0], &fd);
  napi_get_value_int32(env, argv[1], &how);
  shutdown(fd, how);
  return undef(env);
}

/* ------------------------------------------------------------------ the *at family
 * Every call takes a directory fd (AT_FDCWD = -100 for the working directory) and a name
 * relative to it. Callers that confine a walk pass single components and O_NOFOLLOW /
 * AT_SYMLINK_NOFOLLOW, so nothing is ever resolved through a symbolic link by the kernel.
 */

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) { napi_throw_type_error(env, NULL, "expected a number"); return 0; }
  return 1;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) { napi_throw_type_error(env, NULL, "expected a number"); return 0; }
  return 1;
}

/*
 * openat2(dirfd, path, flags, mode, resolve) -> fd. O_CLOEXEC is always added. `resolve` is
 * openat2's RESOLVE_* mask. Without openat2 (Linux < 5.6) a single component is opened with
 * openat(2) (the RESOLVE_* flags are then implied by O_NOFOLLOW and the absence of '/').
 */
static napi_value Openat2(napi_env env, napi_callback_info info) {
  ARGS(5);
  int32_t dirfd; char *path; uint32_t flags, mode, resolve;
  if (!get_i32(env, argv[0], &dirfd) || !get_str(env, argv[1], &path, 0)) return NULL;
  if (!get_u32(env, argv[2], &flags) || !get_u32(env, argv[3], &mode) || !get_u32(env, argv[4], &resolve)) { free(path); return NULL; }
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)flags | O_CLOEXEC;
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = resolve;
  int fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) {
    if (resolve && (strchr(path, '/') || strcmp(path, "..") == 0)) { free(path); return throw_errno(env, ENOSYS, "openat2", NULL); }
    fd = openat(dirfd, path, (int)how.flags, (mode_t)how.mode);
  }
  if (fd < 0) { int e = errno; throw_errno(env, e, "openat2", path); free(path); return NULL; }
  free(path);
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

static void set_num(napi_env env, napi_value o, const char *k, double v) {
  napi_value x; napi_create_double(env, v, &x); napi_set_named_property(env, o, k, x);
}
static void set_big(napi_env env, napi_value o, const char *k, uint64_t v) {
  napi_value x; napi_create_bigint_uint64(env, v, &x); napi_set_named_property(env, o, k, x);
}

/*
 * fstatat(dirfd, path, flags) -> { dev, ino (bigint), mode, nlink, uid, gid, rdevMajor,
 * rdevMinor, size, atimeSec, atimeNsec, mtimeSec, mtimeNsec } or null when absent (ENOENT)
 * and flags has bit 0x80000000 (our own "missing is not an error" flag).
 * AT_EMPTY_PATH with "" stats the fd itself (also an O_PATH fd).
 */
#define FSTATAT_OPTIONAL 0x80000000u
static napi_value Fstatat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t dirfd; char *path; uint32_t flags;
  if (!get_i32(env, argv[0], &dirfd) || !get_str(env, argv[1], &path, 0)) return NULL;
  if (!get_u32(env, argv[2], &flags)) { free(path); return NULL; }
  struct stat st;
  if (fstatat(dirfd, path, &st, (int)(flags & ~FSTATAT_OPTIONAL)) != 0) {
    int e = errno;
    if ((flags & FSTATAT_OPTIONAL) && (e == ENOENT)) { free(path); napi_value n; napi_get_null(env, &n); return n; }
    throw_errno(env, e, "fstatat", path); free(path); return NULL;
  }
  free(path);
  napi_value o;
  napi_create_object(env, &o);
  set_big(env, o, "dev", (uint64_t)st.st_dev);
  set_big(env, o, "ino", (uint64_t)st.st_ino);
  set_num(env, o, "mode", st.st_mode);
  set_num(env, o, "nlink", (double)st.st_nlink);
  set_num(env, o, "uid", st.st_uid);
  set_num(env, o, "gid", st.st_gid);
  set_num(env, o, "rdevMajor", major(st.st_rdev));
  set_num(env, o, "rdevMinor", minor(st.st_rdev));
  set_num(env, o, "size", (double)st.st_size);
  set_num(env, o, "atimeSec", (double)st.st_atim.tv_sec);
  set_num(env, o, "atimeNsec", (double)st.st_atim.tv_nsec);
  set_num(env, o, "mtimeSec", (double)st.st_mtim.tv_sec);
  set_num(env, o, "mtimeNsec", (double)st.st_mtim.tv_nsec);
  return o;
}

/* mkdirat(dirfd, name, mode) */
static napi_value Mkdirat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t dirfd; char *name; uint32_t mode;
  if (!get_i32(env, argv[0], &dirfd) || !get_str(env, argv[1], &name, 0)) return NULL;
  if (!get_u32(env, argv[2], &mode)) { free(name); return NULL; }
  if (mkdirat(dirfd, name, mode) != 0) { int e = errno; throw_errno(env, e, "mkdirat", name); free(name); return NULL; }
  free(name);
  return undef(env);
}

/* mknodat(dirfd, name, mode, major, minor) — mode includes the file type bits */
static napi_value Mknodat(napi_env env, napi_callback_info info) {
  ARGS(5);
  int32_t dirfd; char *name; uint32_t mode, maj, min;
  if (!get_i32(env, argv[0], &dirfd) || !get_str(env, argv[1], &name, 0)) return NULL;
  if (!get_u32(env, argv[2], &mode) || !get_u32(env, argv[3], &maj) || !get_u32(env, argv[4], &min)) { free(name); return NULL; }
  if (mknodat(dirfd, name, mode, makedev(maj, min)) != 0) { int e = errno; throw_errno(env, e, "mknodat", name); free(name); return NULL; }
  free(name);
  return undef(env);
}

/* symlinkat(target, dirfd, name) */
static napi_value Symlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  char *target, *name; int32_t dirfd;
  if (!get_str(env, argv[0], &target, 0)) return NULL;
  if (!get_i32(env, argv[1], &dirfd) || !get_str(env, argv[2], &name, 0)) { free(target); return NULL; }
  if (symlinkat(target, dirfd, name) != 0) { int e = errno; throw_errno(env, e, "symlinkat", name); free(target); free(name); return NULL; }
  free(target); free(name);
  return undef(env);
}

/* linkat(olddirfd, oldname, newdirfd, newname, flags) */
static napi_value Linkat(napi_env env, napi_callback_info info) {
  ARGS(5);
  int32_t ofd, nfd; char *o, *n; uint32_t flags;
  if (!get_i32(env, argv[0], &ofd) || !get_str(env, argv[1], &o, 0)) return NULL;
  if (!get_i32(env, argv[2], &nfd) || !get_str(env, argv[3], &n, 0)) { free(o); return NULL; }
  if (!get_u32(env, argv[4], &flags)) { free(o); free(n); return NULL; }
  if (linkat(ofd, o, nfd, n, (int)flags) != 0) { int e = errno; throw_errno(env, e, "linkat", n); free(o); free(n); return NULL; }
  free(o); free(n);
  return undef(env);
}

/* readlinkat(dirfd, name) -> string; "" with an O_PATH fd of the link reads that link */
static napi_value Readlinkat(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t dirfd; char *name;
  if (!get_i32(env, argv[0], &dirfd) || !get_str(env, argv[1], &name, 0)) return NULL;
  char *buf = malloc(PATH_MAX + 1);
  if (!buf) { free(name); napi_throw_error(env, NULL, "out of memory"); return NULL; }
  ssize_t n = readlinkat(dirfd, name, buf, PATH_MAX + 1);
  if (n < 0) { int e = errno; throw_errno(env, e, "readlinkat", name); free(buf); free(name); return NULL; }
  if (n > PATH_MAX) { free(buf); free(name); return throw_errno(env, ENAMETOOLONG, "readlinkat", NULL); }
  napi_value r;
  napi_create_string_utf8(env, buf, (size_t)n, &r);
  free(buf); free(name);
  return r;
}

/* unlinkat(dirfd, name, flags): AT_REMOVEDIR (0x200) for a directory */
static napi_value Unlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t dirfd; char *name; uint32_t flags;
  if (!get_i32(env, argv[0], &dirfd) || !get_str(env, argv[1], &name, 0)) return NULL;
  if (!get_u32(env, argv[2], &flags)) { free(name); return NULL; }
  if (unlinkat(dirfd, name, (int)flags) != 0) { int e = errno; throw_errno(env, e, "unlinkat", name); free(name); return NULL; }
  free(name);
  return undef(env);
}

/* fchownat(dirfd, name, uid, gid, flags): AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH (also for O_PATH fds) */
static napi_value Fchownat(napi_env env, napi_callback_info info) {
  ARGS(5);
  int32_t dirfd; char *name; uint32_t uid, gid, flags;
  if (!get_i32(env, argv[0], &dirfd) || !get_str(env, argv[1], &name, 0)) return NULL;
  if (!get_u32(env, argv[2], &uid) || !get_u32(env, argv[3], &gid) || !get_u32(env, argv[4], &flags)) { free(name); return NULL; }
  if (fchownat(dirfd, name, uid, gid, (int)flags) != 0) { int e = errno; throw_errno(env, e, "fchownat", name); free(name); return NULL; }
  free(name);
  return undef(env);
}

/* utimensat(dirfd, name, atimeSec, atimeNsec, mtimeSec, mtimeNsec, flags) */
static napi_value Utimensat(napi_env env, napi_callback_info info) {
  ARGS(7);
  int32_t dirfd; char *name; int64_t as, an, ms, mn; uint32_t flags;
  if (!get_i32(env, argv[0], &dirfd) || !get_str(env, argv[1], &name, 0)) return NULL;
  if (!get_i64(env, argv[2], &as) || !get_i64(env, argv[3], &an) || !get_i64(env, argv[4], &ms) || !get_i64(env, argv[5], &mn) || !get_u32(env, argv[6], &flags)) { free(name); return NULL; }
  struct timespec ts[2] = { { (time_t)as, (long)an }, { (time_t)ms, (long)mn } };
  if (utimensat(dirfd, name, ts, (int)flags) != 0) { int e = errno; throw_errno(env, e, "utimensat", name); free(name); return NULL; }
  free(name);
  return undef(env);
}

/* readdirFd(fd) -> string[]: the names in an open directory (not . and ..), from its start; fd stays open */
static napi_value ReaddirFd(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!get_i32(env, argv[0], &fd)) return NULL;
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return throw_errno(env, errno, "fcntl", NULL);
  DIR *dir = fdopendir(d);
  if (!dir) { int e = errno; close(d); return throw_errno(env, e, "fdopendir", NULL); }
  rewinddir(dir);
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t idx = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(dir);
    if (!de) {
      if (errno) { int e = errno; closedir(dir); return throw_errno(env, e, "readdir", NULL); }
      break;
    }
    if (de->d_name[0] == '.' && (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0))) continue;
    napi_value s;
    napi_create_string_utf8(env, de->d_name, NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, idx++, s);
  }
  closedir(dir);
  return arr;
}

/* flistxattr(fd) -> string[] */
static napi_value Flistxattr(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!get_i32(env, argv[0], &fd)) return NULL;
  char stackbuf[1024];
  char *buf = stackbuf;
  ssize_t n = flistxattr(fd, stackbuf, sizeof stackbuf);
  if (n < 0 && errno == ERANGE) {
    ssize_t need = flistxattr(fd, NULL, 0);
    if (need >= 0) { buf = malloc(need + 1); n = buf ? flistxattr(fd, buf, need) : -1; }
  }
  napi_value arr;
  napi_create_array(env, &arr);
  if (n < 0) {
    int e = errno;
    if (buf != stackbuf) free(buf);
    if (e == ENOTSUP) return arr;
    return throw_errno(env, e, "flistxattr", NULL);
  }
  uint32_t idx = 0;
  for (ssize_t off = 0; off < n;) {
    size_t l = strnlen(buf + off, n - off);
    napi_value s;
    napi_create_string_utf8(env, buf + off, l, &s);
    napi_set_element(env, arr, idx++, s);
    off += l + 1;
  }
  if (buf != stackbuf) free(buf);
  return arr;
}

/* fgetxattr(fd, name) -> Buffer | null */
static napi_value Fgetxattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd; char *name;
  if (!get_i32(env, argv[0], &fd) || !get_str(env, argv[1], &name, 0)) return NULL;
  char stackbuf[256];
  char *buf = stackbuf;
  ssize_t n = fgetxattr(fd, name, stackbuf, sizeof stackbuf);
  if (n < 0 && errno == ERANGE) {
    ssize_t need = fgetxattr(fd, name, NULL, 0);
    if (need >= 0) { buf = malloc(need + 1); n = buf ? fgetxattr(fd, name, buf, need) : -1; }
  }
  napi_value result;
  if (n < 0) {
    int e = errno;
    if (buf != stackbuf) free(buf);
    if (e == ENODATA || e == ENOTSUP) { free(name); napi_get_null(env, &result); return result; }
    throw_errno(env, e, "fgetxattr", name); free(name); return NULL;
  }
  void *out;
  napi_create_buffer_copy(env, n, buf, &out, &result);
  if (buf != stackbuf) free(buf);
  free(name);
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"mknod", NULL, Mknod, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lsetxattr", NULL, Lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lgetxattr", NULL, Lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"fsetxattr", NULL, Fsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"llistxattr", NULL, Llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lremovexattr", NULL, Lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mount", NULL, Mount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"umount2", NULL, Umount2, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mountOverlay", NULL, MountOverlay, NULL, NULL, NULL, napi_enumerable, NULL},
    {"syncfs", NULL, Syncfs, NULL, NULL, NULL, napi_enumerable, NULL},
    {"renameat2", NULL, Renameat2, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketConnect", NULL, SeqpacketConnect, NULL, NULL, NULL, napi_enumerable, NULL},
    {"shutdown", NULL, Shutdown, NULL, NULL, NULL, napi_enumerable, NULL},
    {"newNetns", NULL, NewNetns, NULL, NULL, NULL, napi_enumerable, NULL},
    {"openat2", NULL, Openat2, NULL, NULL, NULL, napi_enumerable, NULL},
    {"fstatat", NULL, Fstatat, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mkdirat", NULL, Mkdirat, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mknodat", NULL, Mknodat, NULL, NULL, NULL, napi_enumerable, NULL},
    {"symlinkat", NULL, Symlinkat, NULL, NULL, NULL, napi_enumerable, NULL},
    {"linkat", NULL, Linkat, NULL, NULL, NULL, napi_enumerable, NULL},
    {"readlinkat", NULL, Readlinkat, NULL, NULL, NULL, napi_enumerable, NULL},
    {"unlinkat", NULL, Unlinkat, NULL, NULL, NULL, napi_enumerable, NULL},
    {"fchownat", NULL, Fchownat, NULL, NULL, NULL, napi_enumerable, NULL},
    {"utimensat", NULL, Utimensat, NULL, NULL, NULL, napi_enumerable, NULL},
    {"readdirFd", NULL, ReaddirFd, NULL, NULL, NULL, napi_enumerable, NULL},
    {"flistxattr", NULL, Flistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"fgetxattr", NULL, Fgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
