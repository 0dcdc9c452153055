# Issue 9 #7: every listing of the admin API is a page (?cursor=&limit=,
# 100 by default, at most 1,000; count= is accepted for limit=), so no call
# works on an unbounded set: a queue, the targets of a command, the webhook
# dead letters, the enrollments; and DELETE /v1/queue/ID takes at most
# 1,000 commands per call and says how many remain.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;

use MIME::Base64 qw(encode_base64);

no_shuffle();

our $KEY = 'pages-key';
our $AUTH = 'Authorization: Basic ' . encode_base64("nanomdm:$KEY", '');

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => qq{
        location /v1/ { mdm_api; mdm_api_key $KEY; mdm_result_ttl 1h; }
    },
    more_headers => $AUTH,
);

# Every page of a listing from $path (with "?..." already): the items of
# each page as given by $items->($json), and the number of pages.
sub walk {
    my ($path, $items) = @_;
    my ($cursor, $pages, @all) = ('', 0);
    do {
        my $r = api(GET => $path . ($cursor ne '' ? "&cursor=$cursor" : ''));
        die "GET $path: $r->{status} $r->{body}\n" unless $r->{status} == 200;
        push @all, @{ $items->($r->{json}) };
        $cursor = $r->{json}{cursor};
        $pages++;
    } while ($cursor ne '' && $pages < 1000);
    return (\@all, $pages);
}

{
    no strict 'refs';
    *{"Test::Base::Filter::walk"} = \&walk;
}

run_tests();

__DATA__

=== TEST 1: GET /v1/queue/ID: 100 by default, a cursor to the next page, the total; the pages give the queue once, in order (priority lane first)
--- redis_setup eval
[ [ "FLUSHALL" ], [ "HSET", "mdm:enr:{PG-1}", "type", "Device", "enabled", "1" ],
  [ "RPUSH", "mdm:qp:{PG-1}", map { sprintf "P-%03d", $_ } 1 .. 5 ],
  [ "RPUSH", "mdm:q:{PG-1}", map { sprintf "Q-%03d", $_ } 1 .. 250 ],
  [ "HSET", "mdm:cmd:Q-001", "request_type", "ProfileList", "created_at", "1700000000000" ] ]
--- request
GET /v1/queue/PG-1
--- error_code: 200
--- json eval
{ id => "PG-1", total => num(255), cursor => "100",
  commands => sub {
      my ($c) = @_;
      Test::More::is(scalar @$c, 100, "a page of 100");
      Test::More::is($c->[0]{command_uuid}, "P-001", "the priority lane first");
      Test::More::is($c->[5]{command_uuid}, "Q-001", "then the queue");
      Test::More::is($c->[5]{request_type}, "ProfileList", "with the command's details");
      my ($all, $pages) = walk("/v1/queue/PG-1?limit=60", sub { [ map { $_->{command_uuid} } @{ $_[0]{commands} } ] });
      Test::More::is($pages, 5, "255 commands in 5 pages of 60");
      Test::More::is_deeply($all, [ (map { sprintf "P-%03d", $_ } 1 .. 5), (map { sprintf "Q-%03d", $_ } 1 .. 250) ],
                            "every command once, in queue order");
      1 } }



=== TEST 2: GET /v1/queue/ID: the last page has cursor ""; limit 1 to 1000; a cursor is a number
--- request eval
[ "GET /v1/queue/PG-1?cursor=250&limit=1000", "GET /v1/queue/PG-1?cursor=255", "GET /v1/queue/PG-1?limit=1000",
  map { "GET /v1/queue/PG-1?$_" } "limit=0", "limit=1001", "limit=x", "cursor=abc", "cursor=-1", "cursor=1-1" ]
--- error_code eval
[ 200, 200, 200, (400) x 6 ]
--- json eval
[ exact({ id => "PG-1", total => num(255), cursor => "", commands => sub { @{ $_[0] } == 5 } }),
  exact({ id => "PG-1", total => num(255), cursor => "", commands => [] }),
  { cursor => "", commands => sub { @{ $_[0] } == 255 } },
  (exact({ error => "cursor is one a previous page answered, limit 1 to 1000" })) x 6 ]



=== TEST 3: GET /v1/commands/UUID over 2,500 targets: a page at a time, the cursor walks them all; targets_total counts them
--- redis_setup eval
[ [ "EVAL", q{
      for i = 1, 2500 do
          local id = string.format('T-%04d', i)
          redis.call('SADD', 'mdm:cmd:PG-CMD:targets', id)
          if i % 2 == 0 then
              redis.call('HSET', 'mdm:r:{' .. id .. '}:PG-CMD', 'status', 'Acknowledged')
          end
      end
      redis.call('HSET', 'mdm:cmd:PG-CMD', 'plist', 'x', 'request_type', 'ProfileList',
                 'created_at', '1700000000000', 'priority', '0') }, 0 ] ]
--- request
GET /v1/commands/PG-CMD
--- error_code: 200
--- json eval
{ command_uuid => "PG-CMD", targets_total => num(2500), cursor => qr/^[1-9]\d*$/,
  enrollments => sub {
      my ($e) = @_;
      Test::More::cmp_ok(scalar keys %$e, '<', 2500, "the first page is not everything (" . scalar(keys %$e) . ")");
      my ($all, $pages) = walk("/v1/commands/PG-CMD?limit=1000", sub { [ map { [ $_, $_[0]{enrollments}{$_}{status} ] } keys %{ $_[0]{enrollments} } ] });
      my %st = map { ($_->[0] => $_->[1]) } @$all;
      Test::More::is(scalar keys %st, 2500, "the pages name all 2,500 targets ($pages pages)");
      Test::More::cmp_ok($pages, '>=', 3, "at most about 1,000 a page");
      Test::More::is($st{"T-0002"}, "Acknowledged", "a report");
      Test::More::is($st{"T-0001"}, "Queued", "no report yet: Queued");
      1 } }



=== TEST 4: GET /v1/commands/UUID: bad page parameters 400, a cursor past 2^64 too; an offset past a queue's end is an empty last page
--- request eval
[ (map { "GET /v1/commands/PG-CMD?$_" } "limit=0", "limit=1001", "cursor=x", "cursor=123456789012345678901",
       "cursor=99999999999999999999"),
  "GET /v1/queue/PG-1?cursor=99999999999999999999" ]
--- error_code eval
[ (400) x 5, 200 ]
--- json eval
[ (exact({ error => "cursor is one a previous page answered, limit 1 to 1000" })) x 5,
  exact({ id => "PG-1", total => num(255), cursor => "", commands => [] }) ]
--- no_error_log
[error]



=== TEST 5: GET /v1/webhooks: dead letters newest first, 50 by default, the cursor (the last dead_id) pages back to the oldest
--- redis_setup eval
[ [ "DEL", "mdm:webhooks:dead" ],
  map { [ "XADD", "mdm:webhooks:dead", "*", "event_id", "1-$_", "error", "HTTP 500",
          "type", "Connect", "id", sprintf("D-%03d", $_), "body", "secret" ] } 1 .. 120 ]
--- request
GET /v1/webhooks
--- error_code: 200
--- json eval
{ dead_total => num(120), cursor => qr/^\d+-\d+$/,
  dead => sub {
      my ($d) = @_;
      Test::More::is(scalar @$d, 50, "50 by default");
      Test::More::is($d->[0]{id}, "D-120", "the newest first");
      Test::More::ok(!exists $d->[0]{body}, "without the event body");
      my ($all, $pages) = walk("/v1/webhooks?limit=25", sub { [ map { $_->{id} } @{ $_[0]{dead} } ] });
      Test::More::is_deeply($all, [ map { sprintf "D-%03d", 121 - $_ } 1 .. 120 ],
                            "the pages give every dead letter once, newest to oldest");
      Test::More::is($pages, 5, "in 5 pages of 25");
      1 } }



=== TEST 6: GET /v1/webhooks: count= still works (as limit=); bad page parameters 400
--- request eval
[ "GET /v1/webhooks?count=10", "GET /v1/webhooks?limit=1001", "GET /v1/webhooks?cursor=12",
  "GET /v1/webhooks?cursor=1-2-3", "GET /v1/webhooks?count=0",
  "GET /v1/webhooks?cursor=99999999999999999999-1" ]
--- error_code eval
[ 200, 400, 400, 400, 400, 400 ]
--- json eval
[ { dead => sub { @{ $_[0] } == 10 } },
  (exact({ error => "cursor is one a previous page answered, limit 1 to 1000" })) x 5 ]
--- no_error_log
[error]



=== TEST 7: GET /v1/enrollments takes limit= as well as count=; at most 1000
--- redis_setup eval
[ [ "FLUSHALL" ],
  map { [ "HSET", sprintf("mdm:enr:{E-%02d}", $_), "type", "Device", "enabled", "1" ] } 1 .. 30 ]
--- request eval
[ "GET /v1/enrollments?limit=5", "GET /v1/enrollments?limit=1001",
  "GET /v1/enrollments?cursor=99999999999999999999" ]
--- error_code eval
[ 200, 400, 400 ]
--- json eval
[ { cursor => sub {
      my ($all, $pages) = walk("/v1/enrollments?limit=5", sub { [ map { $_->{id} } @{ $_[0]{enrollments} } ] });
      my %seen = map { ($_ => 1) } @$all;
      Test::More::is(scalar keys %seen, 30, "every enrollment");
      Test::More::cmp_ok($pages, '>', 1, "over several pages ($pages)");
      1 } },
  { error => qr/count 1 to 1000/ },
  exact({ error => "cursor is one a previous page answered, limit 1 to 1000" }) ]



=== TEST 8: DELETE /v1/queue/ID takes at most 1,000 commands a call (limit= fewer) and says how many remain; each result is kept mdm_result_ttl
--- redis_setup eval
[ [ "HSET", "mdm:enr:{PG-2}", "type", "Device", "enabled", "1" ],
  [ "RPUSH", "mdm:qp:{PG-2}", "FIRST" ],
  [ "RPUSH", "mdm:q:{PG-2}", map { sprintf "D-%04d", $_ } 1 .. 2499 ] ]
--- request eval
[ "DELETE /v1/queue/PG-2", "DELETE /v1/queue/PG-2?limit=1000", "DELETE /v1/queue/PG-2?limit=400",
  "DELETE /v1/queue/PG-2", "DELETE /v1/queue/PG-2?limit=0" ]
--- error_code eval
[ 200, 200, 200, 200, 400 ]
--- json eval
[ exact({ id => "PG-2", remaining => num(1500),
          removed => sub { @{ $_[0] } == 1000 && $_[0][0] eq "FIRST" && $_[0][1] eq "D-0001"
                           && $_[0][999] eq "D-0999" } }),
  exact({ id => "PG-2", remaining => num(500), removed => sub { $_[0][0] eq "D-1000" && @{ $_[0] } == 1000 } }),
  exact({ id => "PG-2", remaining => num(100), removed => sub { @{ $_[0] } == 400 } }),
  exact({ id => "PG-2", remaining => num(0), removed => sub { @{ $_[0] } == 100 && $_[0][-1] eq "D-2499" } }),
  exact({ error => "limit is 1 to 1000" }) ]
--- redis_check eval
[ [ "EXISTS mdm:q:{PG-2} mdm:qp:{PG-2}", "0" ],
  [ "HGET mdm:r:{PG-2}:D-2499 status", "Deleted" ],
  [ "TTL mdm:r:{PG-2}:D-2499", sub { $_[0] > 3500 && $_[0] <= 3600 } ],
  [ "TTL mdm:r:{PG-2}:FIRST", sub { $_[0] > 3500 && $_[0] <= 3600 } ] ]
