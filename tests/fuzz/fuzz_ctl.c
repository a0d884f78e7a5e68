/* libFuzzer target for arbiterctl's request builder and JSON printer
 * (clients/c/ctl_request.c, ctl_json.c): the input picks a method and
 * gives "path=value" arguments, one a line, as a user's command line would;
 * the request built is packed, unpacked and printed as JSON.
 *
 * Oracles: no crash, leak or undefined behaviour; an argument is applied
 * or refused with an explanation; whatever was built packs, unpacks and
 * prints. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* The input method of the |k|-th method over every compiled-in service. */
static const ProtobufCMessageDescriptor *pick(unsigned k)
{
    unsigned total = 0;

    for (int pass = 0; pass < 2; pass++) {
        for (size_t s = 0; ctl_services[s] != NULL; s++) {
            const ProtobufCServiceDescriptor *d = ctl_services[s];

            for (unsigned i = 0; i < d->n_methods; i++, total++)
                if (pass == 1 && total == k)
                    return d->methods[i].input;
        }
        if (pass == 0) {
            k %= total;
            total = 0;
        }
    }
    return NULL;
}

static void round_trip(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *packed = malloc(len ? len : 1);
    ProtobufCMessage *back;
    struct json_object *j;

    CHECK(packed != NULL);
    CHECK(protobuf_c_message_pack(msg, packed) == len);
    back = protobuf_c_message_unpack(msg->descriptor, NULL, len, packed);
    CHECK(back != NULL);
    j = ctl_msg_to_json(back);
    CHECK(j != NULL);
    CHECK(json_object_to_json_string(j) != NULL);
    json_object_put(j);
    protobuf_c_message_free_unpacked(back, NULL);
    free(packed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ProtobufCMessageDescriptor *desc;
    ProtobufCMessage *msg;
    char *buf, *line, *next, err[256];
    arena a;

    if (size < 1)
        return 0;
    desc = pick(data[0]);
    CHECK(desc != NULL);
    buf = malloc(size);
    CHECK(buf != NULL);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    arena_init(&a, 1u << 22, NULL);
    msg = ctl_msg_new(desc, &a);
    for (line = buf; msg != NULL && line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        err[0] = '\0';
        if (*line != '\0' && ctl_msg_assign(msg, line, &a, err, sizeof(err)) < 0)
            CHECK(err[0] != '\0');
    }
    if (msg != NULL)
        round_trip(msg);
    arena_deinit(&a);
    free(buf);
    return 0;
}
