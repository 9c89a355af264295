// A Vulkan layer for tests: once the file named by RWKVKIT_LOSE_FILE
// exists, every call that reports a lost device in Vulkan (queue
// submission, fence and semaphore waits and queries, idle waits) returns
// VK_ERROR_DEVICE_LOST, as a driver does after a GPU reset; once the file
// named by RWKVKIT_OOM_FILE exists, every memory allocation returns
// VK_ERROR_OUT_OF_DEVICE_MEMORY, as on a full GPU.
#include <stdlib.h>
#include <unistd.h>

#include "layer.h"

// triggered reports whether the file named by env exists, or existed at
// an earlier call.
static int triggered(int *flag, const char *env) {
	if (!*flag) {
		const char *p = getenv(env);
		if (p && access(p, F_OK) == 0) *flag = 1;
	}
	return *flag;
}

static int lost_flag, oom_flag;
static int lost(void) { return triggered(&lost_flag, "RWKVKIT_LOSE_FILE"); }
static int oom(void) { return triggered(&oom_flag, "RWKVKIT_OOM_FILE"); }

static VkResult layer_CreateDevice(void *phys, const void *info, const void *alloc, void **dev) {
	PFN_createDevice create = device_link(info);
	if (!create) return VK_ERROR_INITIALIZATION_FAILED;
	return create(phys, info, alloc, dev);
}

typedef VkResult (*PFN_queueSubmit)(void *, uint32_t, const void *, uint64_t);
typedef VkResult (*PFN_semValue)(void *, uint64_t, uint64_t *);
typedef VkResult (*PFN_waitSems)(void *, const void *, uint64_t);
typedef VkResult (*PFN_fenceStatus)(void *, uint64_t);
typedef VkResult (*PFN_waitFences)(void *, uint32_t, const uint64_t *, uint32_t, uint64_t);
typedef VkResult (*PFN_idle)(void *);

static PFN_queueSubmit n_queueSubmit;
static PFN_semValue n_semValue, n_semValueKHR;
static PFN_waitSems n_waitSems, n_waitSemsKHR;
static PFN_fenceStatus n_fenceStatus;
static PFN_waitFences n_waitFences;
static PFN_idle n_deviceIdle, n_queueIdle;
typedef VkResult (*PFN_allocate)(void *, const void *, const void *, uint64_t *);
static PFN_allocate n_allocate;

static VkResult l_queueSubmit(void *q, uint32_t n, const void *s, uint64_t f) { return lost() ? VK_ERROR_DEVICE_LOST : n_queueSubmit(q, n, s, f); }
static VkResult l_semValue(void *d, uint64_t s, uint64_t *v) { return lost() ? VK_ERROR_DEVICE_LOST : n_semValue(d, s, v); }
static VkResult l_semValueKHR(void *d, uint64_t s, uint64_t *v) { return lost() ? VK_ERROR_DEVICE_LOST : n_semValueKHR(d, s, v); }
static VkResult l_waitSems(void *d, const void *i, uint64_t t) { return lost() ? VK_ERROR_DEVICE_LOST : n_waitSems(d, i, t); }
static VkResult l_waitSemsKHR(void *d, const void *i, uint64_t t) { return lost() ? VK_ERROR_DEVICE_LOST : n_waitSemsKHR(d, i, t); }
static VkResult l_fenceStatus(void *d, uint64_t f) { return lost() ? VK_ERROR_DEVICE_LOST : n_fenceStatus(d, f); }
static VkResult l_waitFences(void *d, uint32_t n, const uint64_t *f, uint32_t all, uint64_t t) { return lost() ? VK_ERROR_DEVICE_LOST : n_waitFences(d, n, f, all, t); }
static VkResult l_deviceIdle(void *d) { return lost() ? VK_ERROR_DEVICE_LOST : n_deviceIdle(d); }
static VkResult l_queueIdle(void *q) { return lost() ? VK_ERROR_DEVICE_LOST : n_queueIdle(q); }
static VkResult l_allocate(void *d, const void *i, const void *a, uint64_t *m) { return oom() ? VK_ERROR_OUT_OF_DEVICE_MEMORY : n_allocate(d, i, a, m); }

static PFN_vkVoidFunction layer_DeviceProcAddr(void *dev, const char *n) {
	HOOK("vkQueueSubmit", l_queueSubmit, n_queueSubmit)
	HOOK("vkGetSemaphoreCounterValue", l_semValue, n_semValue)
	HOOK("vkGetSemaphoreCounterValueKHR", l_semValueKHR, n_semValueKHR)
	HOOK("vkWaitSemaphores", l_waitSems, n_waitSems)
	HOOK("vkWaitSemaphoresKHR", l_waitSemsKHR, n_waitSemsKHR)
	HOOK("vkGetFenceStatus", l_fenceStatus, n_fenceStatus)
	HOOK("vkWaitForFences", l_waitFences, n_waitFences)
	HOOK("vkDeviceWaitIdle", l_deviceIdle, n_deviceIdle)
	HOOK("vkQueueWaitIdle", l_queueIdle, n_queueIdle)
	HOOK("vkAllocateMemory", l_allocate, n_allocate)
	return NULL;
}
