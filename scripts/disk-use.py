#!/usr/bin/env python3
"""Disk use under a long write load: 8 clients merge-patch 100 Namespaces (about 1 KiB of
annotation each) for DURATION seconds through the server at PORT, printing the size of
DATA_DIR every 10 s. Usage: scripts/disk-use.py PORT DURATION DATA_DIR (see docs/benchmarks.md)."""
import http.client, json, sys, threading, time, os, subprocess
base_host, base_port = "127.0.0.1", int(sys.argv[1])
duration = float(sys.argv[2]); data_dir = sys.argv[3]
def conn(): return http.client.HTTPConnection(base_host, base_port, timeout=30)
c = conn()
for i in range(100):
    body = json.dumps({"apiVersion":"caravan.dev/v1","kind":"Namespace","metadata":{"name":f"disk-{i}"}})
    c.request("POST","/apis/caravan.dev/v1/namespaces",body,{"Content-Type":"application/json"}); r=c.getresponse(); r.read()
count=[0]; stop=time.time()+duration; lock=threading.Lock()
def worker(k):
    c=conn(); n=0
    while time.time()<stop:
        i=(n*7+k)%100
        body=json.dumps({"metadata":{"labels":{"n":str(n)},"annotations":{"pad":"x"*900}}})
        c.request("PATCH",f"/apis/caravan.dev/v1/namespaces/disk-{i}",body,{"Content-Type":"application/merge-patch+json"})
        r=c.getresponse(); r.read()
        if r.status!=200: print("status",r.status,file=sys.stderr); time.sleep(0.1)
        n+=1
    with lock: count[0]+=n
ts=[threading.Thread(target=worker,args=(k,)) for k in range(8)]
[t.start() for t in ts]
t0=time.time()
while any(t.is_alive() for t in ts):
    time.sleep(10)
    du=int(subprocess.check_output(["du","-sb",data_dir]).split()[0])
    print(f"{time.time()-t0:6.0f}s data dir {du/1e6:7.1f} MB", flush=True)
[t.join() for t in ts]
print("writes", count[0], "in", duration, "s")
