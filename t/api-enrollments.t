# Issue 9 #13, the API side of contract C5: POST /v1/enrollments/ID/block
# and /unblock (string key mdm:block:{DID}, the time blocked; the device is
# then refused with 403 by the device handlers), shown as blocked_at in GET
# /v1/enrollments/ID; DELETE /v1/enrollments/ID removes exactly what C5
# lists: the enrollment hash(es) (a device takes its user channels), their
# queues, the mdm:auth: key, the certificate-index entries that point at
# the device, the pending pushes. Results expire by their TTL; a block
# stays.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;

no_shuffle();

our ($HA, $HB, $HC) = ('a' x 64, 'b' x 64, 'c' x 64);

# device B-1 with two user channels, bindings old and new, queues,
# Authenticate kept, pushes pending; OTHER beside it
our @SETUP = (
    [ "FLUSHALL" ],
    [ "HSET", "mdm:enr:{B-1}", "type", "Device", "enabled", "1", $HA, "1900000000" ],
    [ "HSET", "mdm:certs:{B-1}", $HB, "1800000000" ],
    [ "SET", "mdm:certidx:$HA", "B-1" ], [ "SET", "mdm:certidx:$HB", "B-1" ],
    [ "SET", "mdm:certidx:$HC", "OTHER" ],
    [ "HSET", "mdm:enr:{B-1}:U1", "type", "User", "enabled", "1", "parent", "B-1" ],
    [ "HSET", "mdm:enr:{B-1}:U2", "type", "User", "enabled", "1", "parent", "B-1" ],
    [ "SADD", "mdm:users:{B-1}", ":U1", ":U2" ],
    [ "RPUSH", "mdm:q:{B-1}", "C1", "C2" ], [ "RPUSH", "mdm:qp:{B-1}", "C0" ],
    [ "RPUSH", "mdm:q:{B-1}:U1", "C3" ],
    [ "SET", "mdm:auth:{B-1}", "<plist/>" ],
    # DDM: B-1 in set S1 with OTHER, a report kept
    [ "SADD", "mdm:ddm:enrsets:{B-1}", "S1" ], [ "SADD", "mdm:ddm:setenrs:S1", "B-1", "OTHER" ],
    [ "SADD", "mdm:ddm:enrsets:{OTHER}", "S1" ],
    [ "HSET", "mdm:ddm:status:{B-1}", "x", "1" ],
    [ "HSET", "mdm:r:{B-1}:C9", "status", "Acknowledged" ],
    [ "RPUSH", "mdm:push", "OTHER", "B-1", "B-1:U1" ],
    [ "SADD", "mdm:push:pending", "OTHER", "B-1", "B-1:U1" ],
    [ "HSET", "mdm:enr:{OTHER}", "type", "Device", "enabled", "1", $HC, "1900000000" ],
    [ "RPUSH", "mdm:q:{OTHER}", "C1" ],
);

api_defaults('enr-key');

run_tests();

__DATA__

=== TEST 1: block: the time is stored in mdm:block:{DID} and shown as blocked_at, on the device and its user channels, in the listing too
--- redis_setup eval
\@::SETUP
--- request eval
[ "POST /v1/enrollments/B-1/block", "GET /v1/enrollments/B-1", "GET /v1/enrollments/B-1:U1",
  "GET /v1/enrollments/OTHER", "GET /v1/enrollments?limit=1000" ]
--- error_code eval
[ 200, 200, 200, 200, 200 ]
--- json eval
[ exact({ id => "B-1", blocked_at => num(qr/^\d{13}$/), enrolled => JSON::PP::true }),
  { id => "B-1", blocked_at => num(qr/^\d{13}$/) },
  { id => "B-1:U1", blocked_at => num(qr/^\d{13}$/) },
  { id => "OTHER", blocked_at => absent() },
  { enrollments => sub {
      my %b = map { ($_->{id} => $_->{blocked_at}) } @{ $_[0] };
      defined $b{"B-1"} && defined $b{"B-1:U2"} && exists $b{OTHER} && !defined $b{OTHER} } } ]
--- redis_check eval
[ [ "GET mdm:block:{B-1}", qr/^\d{13}$/ ], [ "TTL mdm:block:{B-1}", "-1" ],
  [ "HGET mdm:enr:{B-1} enabled", "1" ], [ "LLEN mdm:q:{B-1}", "2" ] ]



=== TEST 2: block before enrollment (or after DELETE) is allowed: the device is refused when it comes; a notice line says it
--- request
POST /v1/enrollments/NOT-YET/block
--- error_code: 200
--- error_log
[notice]
mdm: API: block of device "NOT-YET"
--- json eval
exact({ id => "NOT-YET", blocked_at => num(qr/^\d{13}$/), enrolled => JSON::PP::false })
--- redis_check eval
[ [ "GET mdm:block:{NOT-YET}", qr/^\d{13}$/ ] ]



=== TEST 3: block and unblock take POST and a device id; bad ids 400
--- request eval
[ "GET /v1/enrollments/B-1/block", "DELETE /v1/enrollments/B-1/unblock", "POST /v1/enrollments/B-1:U1/block",
  "POST /v1/enrollments/%7BX%7D/block" ]
--- error_code eval
[ 405, 405, 400, 400 ]
--- json eval
[ (exact({ error => "enrollments/ID/block and unblock take POST" })) x 2,
  exact({ error => "block and unblock take a device id, not a user channel's" }),
  exact({ error => "invalid enrollment id or command UUID" }) ]



=== TEST 4: unblock deletes the key, says whether there was one; blocked_at is gone
--- request eval
[ "POST /v1/enrollments/B-1/unblock", "POST /v1/enrollments/B-1/unblock", "GET /v1/enrollments/B-1" ]
--- error_code eval
[ 200, 200, 200 ]
--- json eval
[ exact({ id => "B-1", blocked => JSON::PP::false, was_blocked => JSON::PP::true }),
  exact({ id => "B-1", blocked => JSON::PP::false, was_blocked => JSON::PP::false }),
  { id => "B-1", blocked_at => absent() } ]
--- redis_check eval
[ [ "EXISTS mdm:block:{B-1}", "0" ] ]



=== TEST 5: DELETE of a user channel: its hash, queue and pending push; the device and the other channel stay
--- redis_setup eval
\@::SETUP
--- request eval
[ "DELETE /v1/enrollments/B-1:U1", "GET /v1/enrollments/B-1:U1", "DELETE /v1/enrollments/B-1:U1" ]
--- error_code eval
[ 200, 404, 404 ]
--- json eval
[ exact({ id => "B-1:U1", deleted => [ "B-1:U1" ], blocked => JSON::PP::false }),
  exact({ error => "unknown enrollment" }), exact({ error => "unknown enrollment" }) ]
--- redis_check eval
[ [ "EXISTS mdm:enr:{B-1}:U1 mdm:q:{B-1}:U1", "0" ],
  [ "SMEMBERS mdm:users:{B-1}", [ ":U2" ] ],
  # the id stays in the list (no LREM walk); the worker drops it: no enrollment
  [ "LRANGE mdm:push 0 -1", [ "OTHER", "B-1", "B-1:U1" ] ],
  [ "SMEMBERS mdm:push:pending", sub { "@{[ sort @{ $_[0] } ]}" eq "B-1 OTHER" } ],
  [ "EXISTS mdm:enr:{B-1} mdm:enr:{B-1}:U2 mdm:q:{B-1} mdm:auth:{B-1}", "4" ] ]



=== TEST 6: DELETE of a blocked device: everything C5 lists goes, its user channels too; the block, the results and OTHER stay
--- redis_setup eval
[ @::SETUP, [ "SET", "mdm:block:{B-1}", "1700000000000" ] ]
--- request eval
[ "DELETE /v1/enrollments/B-1", "GET /v1/enrollments/B-1", "GET /v1/enrollments/B-1:U2",
  "DELETE /v1/enrollments/B-1" ]
--- error_code eval
[ 200, 404, 404, 404 ]
--- json eval
[ exact({ id => "B-1", blocked => JSON::PP::true,
          deleted => sub { "@{[ sort @{ $_[0] } ]}" eq "B-1 B-1:U1 B-1:U2" && $_[0][0] eq "B-1" } }),
  (exact({ error => "unknown enrollment" })) x 3 ]
--- redis_check eval
[ [ "EXISTS mdm:enr:{B-1} mdm:enr:{B-1}:U1 mdm:enr:{B-1}:U2", "0" ],
  [ "EXISTS mdm:q:{B-1} mdm:qp:{B-1} mdm:q:{B-1}:U1 mdm:users:{B-1}", "0" ],
  [ "EXISTS mdm:auth:{B-1} mdm:certs:{B-1}", "0" ],
  [ "EXISTS mdm:certidx:$::HA mdm:certidx:$::HB", "0" ],
  [ "GET mdm:certidx:$::HC", "OTHER" ],
  [ "LRANGE mdm:push 0 -1", [ "OTHER", "B-1", "B-1:U1" ] ],
  [ "SMEMBERS mdm:push:pending", [ "OTHER" ] ],
  [ "GET mdm:block:{B-1}", "1700000000000" ],
  [ "EXISTS mdm:ddm:enrsets:{B-1} mdm:ddm:status:{B-1}", "0" ],
  [ "SMEMBERS mdm:ddm:setenrs:S1", [ "OTHER" ] ],
  [ "EXISTS mdm:ddm:enrsets:{OTHER}", "1" ],
  [ "HGET mdm:r:{B-1}:C9 status", "Acknowledged" ],
  [ "EXISTS mdm:enr:{OTHER} mdm:q:{OTHER}", "2" ] ]



=== TEST 7: DELETE of a device whose index entry was taken over by another device leaves that entry alone; a notice line says it
--- redis_setup eval
[ @::SETUP, [ "SET", "mdm:certidx:$::HA", "OTHER" ] ]
--- request
DELETE /v1/enrollments/B-1
--- error_code: 200
--- error_log
mdm: API: delete of enrollment "B-1"
--- redis_check eval
[ [ "GET mdm:certidx:$::HA", "OTHER" ], [ "EXISTS mdm:certidx:$::HB", "0" ] ]



=== TEST 8: enrollments/ID takes GET or DELETE; an unknown sub-path is no endpoint
--- request eval
[ "PUT /v1/enrollments/OTHER", "POST /v1/enrollments/OTHER\nx", "POST /v1/enrollments/OTHER/delete" ]
--- error_code eval
[ 405, 405, 404 ]
--- json eval
[ (exact({ error => "enrollments/ID takes GET or DELETE" })) x 2, exact({ error => "unknown endpoint" }) ]



=== TEST 9: two bound certificates valid as long (a renewal issued within the second of the old one): cert_hash is the one bound last, whichever order the hash keeps them in
--- redis_setup eval
[ [ "FLUSHALL" ],
  [ "HSET", "mdm:enr:{T-1}", "type", "Device", "enabled", "1", $::HA, "1900000000", $::HB, "1900000000", "cert_bound", $::HA ],
  [ "HSET", "mdm:enr:{T-2}", "type", "Device", "enabled", "1", $::HA, "1900000000", $::HB, "1900000000", "cert_bound", $::HB ] ]
--- request eval
[ "GET /v1/enrollments/T-1", "GET /v1/enrollments/T-2" ]
--- error_code eval
[ 200, 200 ]
--- json eval
[ { id => "T-1", cert_hash => $::HA, cert_not_after => 1900000000 },
  { id => "T-2", cert_hash => $::HB, cert_not_after => 1900000000 } ]
