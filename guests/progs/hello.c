/*
 * hello — smallest SMP smoke test.
 *
 * Hart 0 prints the banner, then every hart reports in, strictly in hart
 * order (a turn variable passes from hart to hart), then hart 0 exits 0.
 * Deterministic for a given hart count.
 */
#include "runtime.h"

static volatile uint32_t turn;
static barrier_t bar;

int guest_main(unsigned hart, unsigned nharts)
{
    if (hart == 0)
        printf("Hello from samsara guest, %u harts\n", nharts);
    barrier_wait(&bar);

    turn_wait(&turn, hart);
    printf("hart %u of %u reporting in\n", hart, nharts);
    turn_pass(&turn);

    barrier_wait(&bar);
    if (hart == 0)
        printf("hello: PASS\n");
    return 0;
}
