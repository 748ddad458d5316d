# Posthorn top-level Makefile.
#
# Everything is built out of tree under $(B) (default ./build), laid out the
# way it is installed: $(B)/libexec/posthorn for the daemons, $(B)/sbin for the
# admin commands, $(B)/t/unit for the unit-test binaries.  A second tree with
# sanitizers is just another B:  make B=build-asan SAN=-fsanitize=address,undefined
#
# Targets: all check unit install dist deps run clean

VERSION    = 0.1.0
PREFIX    ?= /usr/local
sysconfdir ?= /etc
DESTDIR   ?=
libexecdir = $(PREFIX)/libexec/posthorn
sbindir    = $(PREFIX)/sbin
mandir     = $(PREFIX)/share/man
confdir    = $(sysconfdir)/posthorn

B         ?= build
CC        ?= cc
OPT       ?= -O2 -g
SAN       ?=
CFLAGS    ?=
DEPFLAGS   = -MMD -MP
CPPFLAGS  += -Ilib -It/lib -isystem /usr/include/bsd -isystem /usr/include/opendkim -DLIBBSD_OVERLAY -D_GNU_SOURCE \
             -DPOSTHORN_VERSION='"$(VERSION)"' \
             -DDEF_DAEMON_DIRECTORY='"$(libexecdir)"' \
             -DDEF_COMMAND_DIRECTORY='"$(sbindir)"' \
             -DDEF_CONFIG_DIRECTORY='"$(confdir)"' \
             -DDEF_ALIAS_FILE='"$(sysconfdir)/aliases"'
# Hardening as Debian's dpkg-buildflags gives it: stack protector, stack
# clash protection, fortified libc calls (not under the sanitizers, which
# check more), full RELRO.  BIND_NOW also spares each of local's delivery
# processes the lazy binding of every function its parent never called.
HARDEN_CFLAGS  = -fstack-protector-strong -fstack-clash-protection \
                 $(if $(SAN),,-D_FORTIFY_SOURCE=2)
HARDEN_LDFLAGS = -Wl,-z,relro,-z,now
ALLCFLAGS  = $(OPT) $(SAN) $(HARDEN_CFLAGS) -std=gnu11 -Wall -Wextra -Werror $(CFLAGS)
# --as-needed: a program records only the libraries it calls, so smtpd
# does not load libspf2 or libopendkim, which only checkd and cleanup use.
LDLIBS     = -lbsd -ldb -lssl -lcrypto -lunbound -lidn -lcrypt -lspf2 -lopendkim \
             -lpsl -lidn2 -lseccomp -lz
LDFLAGS   += $(SAN) $(HARDEN_LDFLAGS) -Wl,--as-needed

LIB_SRC    = $(wildcard lib/*.c)
LIB_OBJ    = $(LIB_SRC:%.c=$(B)/obj/%.o)
LIBA       = $(B)/obj/libposthorn.a

# Daemons (installed into libexec) and admin commands (installed into sbin).
DAEMONS    = $(filter $(patsubst %/,%,$(wildcard */)),master smtpd submission cleanup qmgr pickup showq smtp local authd pop3d imapd lookupd anvil checkd)
COMMANDS   = $(filter $(patsubst %/,%,$(wildcard */)),mailctl sendmail)
DAEMON_BIN = $(DAEMONS:%=$(B)/libexec/posthorn/%)
CMD_BIN    = $(COMMANDS:%=$(B)/sbin/%)

BENCH_SRC  = $(wildcard bench/*.c)
BENCH_BIN  = $(BENCH_SRC:bench/%.c=$(B)/bench/%)
UNIT_SRC   = $(wildcard t/unit/*.c)
UNIT_BIN   = $(UNIT_SRC:t/unit/%.c=$(B)/t/unit/%.t)
TESTSVC_SRC = $(wildcard t/service/*.c)
TESTSVC    = $(TESTSVC_SRC:t/service/%.c=$(B)/t/%)

all: $(DAEMON_BIN) $(CMD_BIN) $(UNIT_BIN) $(TESTSVC)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(ALLCFLAGS) $(DEPFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# One link rule per program: its directory's objects plus the library.
define program_rule
$(1): $$(patsubst %.c,$(B)/obj/%.o,$$(wildcard $(2)/*.c)) $$(LIBA)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(DAEMONS),$(eval $(call program_rule,$(B)/libexec/posthorn/$(p),$(p))))
$(foreach p,$(COMMANDS),$(eval $(call program_rule,$(B)/sbin/$(p),$(p))))

$(B)/t/unit/%.t: $(B)/obj/t/unit/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Test tools: t/service/NAME.c -> $(B)/t/NAME.
$(B)/t/%: $(B)/obj/t/service/%.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# The whole suite: unit tests, then the integration tests against real
# instances.  prove prints the summary line last.
check: all
	POSTHORN_BUILD=$(abspath $(B)) prove $(PROVEFLAGS) $(abspath $(UNIT_BIN)) $(wildcard t/*.t)

# Unit tests only (used for the sanitizer tree in CI).
unit: $(UNIT_BIN)
	POSTHORN_BUILD=$(abspath $(B)) prove $(PROVEFLAGS) $(abspath $(UNIT_BIN))

# Benchmarks print figures; they never pass or fail on time.
bench: all $(BENCH_BIN)
	$(B)/bench/ipc_bench
	$(B)/bench/dkim_bench
	POSTHORN_BUILD=$(abspath $(B)) bench/connrate.py
	POSTHORN_BUILD=$(abspath $(B)) bench/smtp_bench.py $(BENCHFLAGS)
	POSTHORN_BUILD=$(abspath $(B)) bench/sendmail_bench.py

# libFuzzer harnesses for the lib/ parsers (clang); FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 30
fuzz:
	t/fuzz/run.sh $(B)/fuzz $(FUZZ_SECONDS)

install: all
	install -d $(DESTDIR)$(libexecdir) $(DESTDIR)$(sbindir) $(DESTDIR)$(confdir) \
	           $(DESTDIR)$(mandir)/man1 $(DESTDIR)$(mandir)/man5 $(DESTDIR)$(mandir)/man8
	for p in $(DAEMONS); do install -m 0755 $(B)/libexec/posthorn/$$p $(DESTDIR)$(libexecdir)/$$p; done
	for p in $(COMMANDS); do install -m 0755 $(B)/sbin/$$p $(DESTDIR)$(sbindir)/$$p; done
	if [ -x $(B)/sbin/sendmail ]; then \
	    ln -sf sendmail $(DESTDIR)$(sbindir)/mailq; \
	    ln -sf sendmail $(DESTDIR)$(sbindir)/newaliases; \
	fi
	for f in etc/main.conf etc/master.conf; do \
	    t=$(DESTDIR)$(confdir)/$$(basename $$f); \
	    if [ -e $$t ]; then echo "keeping existing $$t"; else install -m 0644 $$f $$t; fi; \
	done
	@# The host's own alias file (alias_maps' default), as a Debian MTA
	@# package makes it: only when the host has none.
	if [ -e $(DESTDIR)$(sysconfdir)/aliases ]; then \
	    echo "keeping existing $(DESTDIR)$(sysconfdir)/aliases"; \
	else install -m 0644 etc/aliases $(DESTDIR)$(sysconfdir)/aliases; fi
	for m in man/*.1; do install -m 0644 $$m $(DESTDIR)$(mandir)/man1/; done
	for m in man/*.5; do install -m 0644 $$m $(DESTDIR)$(mandir)/man5/; done
	for m in man/*.8; do install -m 0644 $$m $(DESTDIR)$(mandir)/man8/; done

# Make Posthorn the host's MTA for programs that call the standard paths
# (cron, mail(1), ...): /usr/sbin/sendmail, /usr/bin/mailq and
# /usr/bin/newaliases become links to ours.  An existing file that is not
# already such a link is left alone (remove the other MTA first), unless
# FORCE=1, which keeps it as NAME.pre-posthorn.
install-mta-links:
	@for l in /usr/sbin/sendmail:sendmail /usr/bin/mailq:mailq /usr/bin/newaliases:newaliases; do \
	    path=$(DESTDIR)$${l%%:*}; target=$(sbindir)/$${l##*:}; \
	    mkdir -p "$$(dirname "$$path")"; \
	    if [ -L "$$path" ] && [ "$$(readlink "$$path")" = "$$target" ]; then \
	        echo "$$path already points to $$target"; continue; \
	    fi; \
	    if [ -e "$$path" ] || [ -L "$$path" ]; then \
	        if [ "$(FORCE)" != 1 ]; then \
	            echo "$$path exists (another MTA?): remove it, or FORCE=1 keeps it as $$path.pre-posthorn" >&2; \
	            exit 1; \
	        fi; \
	        mv "$$path" "$$path.pre-posthorn"; \
	    fi; \
	    ln -s "$$target" "$$path" && echo "$$path -> $$target"; \
	done

DISTNAME = posthorn-$(VERSION)
dist:
	rm -rf $(B)/dist && mkdir -p $(B)/dist/$(DISTNAME)
	{ git ls-files 2>/dev/null || find . -type f ! -path './.git/*' ! -path './$(B)/*' \
	    ! -path './build*' ! -path './run/*' ! -name '*.tar.gz'; } \
	    | tar -cf - -T - | tar -xf - -C $(B)/dist/$(DISTNAME)
	tar -C $(B)/dist -czf $(DISTNAME).tar.gz $(DISTNAME)
	@echo "wrote $(DISTNAME).tar.gz"

deps:
	sh t/lib/deps.sh

# A self-contained instance under ./run, in the foreground, on loopback
# ports 10025, 10587, ...  Stop it with ^C.
run: all
	@test -d run/etc || $(B)/sbin/mailctl init $(abspath run) --port-base 10000
	$(B)/sbin/mailctl -c $(abspath run/etc) start -f

clean:
	rm -rf $(B) build-asan $(DISTNAME).tar.gz

.PHONY: all check unit bench fuzz install install-mta-links dist deps run clean
.SECONDARY:
