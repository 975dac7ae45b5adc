# kit.mk - shared build rules for guest-kit sub-Makefiles.
#
# A sub-Makefile (kernels/<kit>/Makefile, tests/Makefile, ...) says
#
#     PROGRAMS := foo bar          # builds $(BUILD)/foo.elf, $(BUILD)/bar.elf
#     foo_SRCS := foo.c extra.S    # optional; default is foo.c
#     include ../../common/kit.mk  # (relative path to this file)
#
# and gets: `all` (build every program), `clean`, objects under
# $(BUILD)/obj/, crt0 + trap + kit.c linked into each program, the
# toolchain flags below and common/kit.ld (override per program with
# foo_LDSCRIPT, or for the whole directory with KIT_LDSCRIPT).
#
# Convention with the top-level Makefile: it runs `make -C <dir> BUILD=<abs
# dir>`; every *.elf directly inside $(BUILD) is an image and is copied to
# guest-kits/images/ under the same name (names are unique across kits).

KIT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
BUILD ?= $(KIT)/build/$(patsubst $(KIT)/%,%,$(CURDIR))
OBJ := $(BUILD)/obj

CROSS ?= mips-linux-gnu-
CC := $(CROSS)gcc

# -march/-mabi/-EB: the R4000 in 32-bit big-endian mode (the board's CPU).
# -mno-abicalls -fno-pic -G0: absolute addressing, no GOT, no $gp-relative
#   small data, so code runs anywhere we link it, without a loader.
# -msoft-float: never touch the FPU (CU1 is off).
# -ffreestanding -nostdlib -fno-builtin: no libc; only what common/ has.
# -fno-tree-loop-distribute-patterns: do not turn our memset loop into a
#   call to memset.
# Reproducibility: -ffile-prefix-map hides the checkout path,
#   -gno-record-gcc-switches keeps flags out of the debug info, -fno-ident
#   drops .comment, --build-id=none drops the random-looking note.
# -fno-pie/-no-pie/-static: Debian's gcc makes PIEs by default.
KIT_CFLAGS := -march=r4000 -mabi=32 -EB -mno-abicalls -fno-pic -G0 \
	-msoft-float -fno-pie -ffreestanding -nostdlib -fno-builtin \
	-fno-tree-loop-distribute-patterns -fno-asynchronous-unwind-tables \
	-fno-unwind-tables -fno-ident -O2 -std=gnu11 -Wall -Wextra -Werror \
	-g -gno-record-gcc-switches -ffile-prefix-map=$(KIT)=/guest-kits \
	-I$(KIT)/common -MMD -MP
KIT_LDFLAGS := -static -no-pie -Wl,--build-id=none -Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack -Wl,-nostdlib -Wl,--no-warn-rwx-segments
KIT_LDSCRIPT ?= $(KIT)/common/kit.ld
KIT_COMMON_OBJS := $(OBJ)/common/crt0.o $(OBJ)/common/trap.o \
	$(OBJ)/common/kit.o
KIT_LIBS := -lgcc
# Objects and images also depend on the Makefiles that say how to build them.
KIT_DEPS := $(KIT)/common/kit.mk $(abspath $(firstword $(MAKEFILE_LIST)))

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all clean
all: $(foreach p,$(PROGRAMS),$(BUILD)/$(p).elf)

define kit_program
$(1)_SRCS ?= $(1).c
$(1)_LDSCRIPT ?= $$(KIT_LDSCRIPT)
$(1)_OBJS := $$(addprefix $$(OBJ)/,$$(addsuffix .o,$$(basename $$($(1)_SRCS))))
$$(BUILD)/$(1).elf: $$($(1)_OBJS) $$(KIT_COMMON_OBJS) $$($(1)_LDSCRIPT) $$(KIT_DEPS)
	$$(Q)$$(CC) $$(KIT_CFLAGS) $$(KIT_LDFLAGS) -T $$($(1)_LDSCRIPT) \
		-o $$@ $$(KIT_COMMON_OBJS) $$($(1)_OBJS) $$(KIT_LIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call kit_program,$(p))))

$(OBJ)/common/%.o: $(KIT)/common/%.c $(KIT_DEPS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(KIT_CFLAGS) -c -o $@ $<
$(OBJ)/common/%.o: $(KIT)/common/%.S $(KIT_DEPS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(KIT_CFLAGS) -c -o $@ $<
$(OBJ)/%.o: $(CURDIR)/%.c $(KIT_DEPS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(KIT_CFLAGS) $(EXTRA_CFLAGS) -c -o $@ $<
$(OBJ)/%.o: $(CURDIR)/%.S $(KIT_DEPS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(KIT_CFLAGS) $(EXTRA_CFLAGS) -c -o $@ $<

clean:
	$(Q)rm -rf $(BUILD)

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
