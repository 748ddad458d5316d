/*
 * srsrev - cleanup's reversal of SRS recipients; see srsrev.h.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "conf.h"
#include "msg.h"
#include "srs.h"
#include "srsrev.h"
#include "xalloc.h"

static srs_t *srsrev_srs;
static char *srsrev_error;          /* SRS is on, but its secrets could not be read */

void srsrev_init(void)
{
    char *why = NULL;

    switch (srs_load(&srsrev_srs, &why)) {
    case -1:
        msg_warn("SRS: %s; mail to SRS addresses is deferred", why);
        srsrev_error = why;
        break;
    case 0:
        if (why)
            msg_warn("%s", why);
        free(why);
        break;
    default:
        break;
    }
}

/* Is address an SRS address of srs_domain? */
static int srsrev_candidate(const char *address)
{
    const char *at = strrchr(address, '@');

    return at != NULL && addr_domain_eq(at + 1, conf_str("srs_domain"))
           && srs_is_srs_local(address);
}

int srsrev_rewrite(struct cleanup_request *r, const char **dsn, const char **text)
{
    time_t now = time(NULL);

    if (srsrev_srs == NULL && srsrev_error == NULL)
        return 0;
    for (size_t i = 0; i < r->nrcpt; i++) {
        struct cleanup_rcpt *rc = &r->rcpts[i];
        const char *why = NULL;
        char *orig = NULL;

        if (!srsrev_candidate(rc->address))
            continue;
        if (srsrev_srs == NULL) {
            msg_warn("cannot route <%s> back: SRS: %s", rc->address, srsrev_error);
            *dsn = "4.3.0";
            *text = "Error: SRS is not available";
            return 451;
        }
        switch (srs_reverse(srsrev_srs, rc->address, now, &orig, &why)) {
        case SRS_OK:
            msg_info("SRS: <%s> routed back to <%s>", rc->address, orig);
            if (rc->orig[0] == '\0') {
                free(rc->orig);
                rc->orig = rc->address;
            } else {
                free(rc->address);
            }
            rc->address = orig;
            break;
        case SRS_INVALID:
            msg_info("SRS: <%s> not routed back: %s", rc->address, why);
            break;
        default:
            break;
        }
    }
    return 0;
}
