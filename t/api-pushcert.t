# PUT /v1/pushcert and the push-topic guard.
#
# Issue 9 #15: ?force=false (or 0, no) is not force; only 1, true or yes
# force, anything else is a 400 before the body is looked at.
# Contract C2: mdm:topics holds the topics of uploaded push certificates
# only; an upload adds its topic there, and the guard (a certificate for
# another topic is refused unless forced) compares against those alone.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;
use t::MDMServers;

no_shuffle();

our $A = make_push_cert();
our $A2 = make_push_cert(topic => $A->{topic}, uuid => 'renewed-0001');
our $B = make_push_cert();
our $C = make_push_cert();

sub put { my ($c, $q) = @_; "PUT /v1/pushcert" . ($q // '') . "\n$c->{pem}$c->{key_pem}" }

{
    no strict 'refs';
    *{"Test::Base::Filter::put"} = \&put;
}

api_defaults('cert-key');

run_tests();

__DATA__

=== TEST 1: the first upload is stored and its topic added to mdm:topics
--- redis_setup eval
[ [ "FLUSHALL" ] ]
--- request eval
put($::A)
--- error_code: 200
--- json eval
exact({ topic => $::A->{topic}, not_after => qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/ })
--- redis_check eval
[ [ "SMEMBERS mdm:topics", [ $::A->{topic} ] ],
  [ "HEXISTS mdm:pushcert:$::A->{topic} cert", "1" ] ]



=== TEST 2: a renewal (same topic) passes the guard; another topic is refused, and with force=false, 0, no, FALSE too
--- request eval
[ put($::A2), put($::B), put($::B, "?force=false"), put($::B, "?force=0"), put($::B, "?force=no"),
  put($::B, "?force=FALSE"), put($::B, "?force=") ]
--- error_code eval
[ 200, (409) x 6 ]
--- json eval
[ { topic => $::A->{topic} },
  (exact({ error => qr/^the certificate is for topic \Q$::B->{topic}\E but enrolled devices listen on \Q$::A->{topic}\E/ })) x 6 ]
--- redis_check eval
[ [ "SMEMBERS mdm:topics", [ $::A->{topic} ] ],
  [ "EXISTS mdm:pushcert:$::B->{topic}", "0" ] ]



=== TEST 3: force values that are not a yes or a no: 400, nothing stored
--- request eval
[ put($::B, "?force=2"), put($::B, "?force=yesplease"), put($::B, "?force=on"), put($::B, "?force=%00") ]
--- error_code eval
[ (400) x 4 ]
--- json eval
[ (exact({ error => "force is 1, true, yes, 0, false or no" })) x 4 ]
--- redis_check eval
[ [ "EXISTS mdm:pushcert:$::B->{topic}", "0" ] ]



=== TEST 4: force=1, true, yes replace: the new topic is added beside the old one
--- request eval
[ put($::B, "?force=yes"), put($::C, "?force=True"), put($::B, "?force=1") ]
--- error_code eval
[ 200, 200, 200 ]
--- redis_check eval
[ [ "SMEMBERS mdm:topics", sub { "@{[ sort @{ $_[0] } ]}" eq CORE::join(" ", sort $::A->{topic}, $::B->{topic}, $::C->{topic}) } ],
  [ "HEXISTS mdm:pushcert:$::C->{topic} cert", "1" ] ]



=== TEST 5: topics that devices sent are not in mdm:topics: with none uploaded, the guard lets any certificate in
--- redis_setup eval
[ [ "FLUSHALL" ], [ "HSET", "mdm:enr:{DEV}", "type", "Device", "enabled", "1", "topic", $::A->{topic} ] ]
--- request eval
put($::B)
--- error_code: 200
--- redis_check eval
[ [ "SMEMBERS mdm:topics", [ $::B->{topic} ] ] ]
