"""The style sheet and the script the HTML report inlines (scrubber.emit.html_report).

Both are inlined so the page works offline from a file, and both are named by
their SHA-256 in the page's Content-Security-Policy, so nothing else runs or
styles the page: a claim that carries markup can never become a script.

The script draws the claim table from the data the page carries (every claim
as a compact JSON row, gzipped and base64-encoded in a data block, see
``html_report.ROW``): it renders one page of rows at a time, so a report of
30,000 claims opens as fast as one of 30. Rows are in the order a biller
works them: rejected, then accepted with warnings, then accepted, each in file
order. A claim's findings open under its row; a link to another claim (of any
file of the report) opens and scrolls to that claim, clearing filters that
hide it; claims named by findings but sent in an earlier submission, not in
this report, get one entry each at the foot of the table.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:90em}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;
padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.num,th.num{text-align:right}
.reject{color:#b00020;font-weight:bold}.warn{color:#9a6700}.info{color:#0a5f8a}
.status{display:inline-block;padding:.05em .5em;border-radius:.8em;font-size:.9em;
white-space:nowrap}
.status.rejected{background:#fde7ea;color:#b00020;font-weight:bold}
.status.warned{background:#fff4d6;color:#7a5200}
.status.accepted{background:#e6f4ea;color:#1e6b34}
.verdict{font-weight:bold}.verdict.ok{color:#1e6b34}.verdict.fix{color:#b00020}
pre{background:#f8f8f8;padding:.5em;margin:.3em 0;overflow-x:auto}mark{background:#ffd54f}
.here{background:#fff3cd}.claim{margin:.2em 0 .6em}.claim h3{margin:.2em 0}
.finding{margin:.2em 0}.filters label,.pager label{margin-right:1em;white-space:nowrap}
.filters,.pager{margin:.4em 0}.pager button{margin-right:.3em}
#claims{font-size:.92em}#claims th,#claims td.id,#claims td.rules span{white-space:nowrap}
th.sortable{cursor:pointer}th.sortable::after{content:" \\2195";color:#999}
th.sortable[data-order=asc]::after{content:" \\2191"}
th.sortable[data-order=desc]::after{content:" \\2193"}
#claims a.claim-link::before{content:"\\25B8 ";color:#999}
#claims tr.open a.claim-link::before{content:"\\25BE ";color:#999}
#claims tr.open>td{background:#fafafa}#claims tr.detail>td{background:#fff}
#claims tr.landed>td{background:#fff3cd}
.stub{border-top:1px solid #ddd}
svg text{font-size:12px;font-family:system-ui,sans-serif}
section.file{border-top:3px solid #ccc;margin-top:2em}
"""

SCRIPT = r"""
(function(){
'use strict';
var table=document.getElementById('claims');
if(!table||!document.getElementById('report-data')){return;}
var body=table.tBodies[0];
var FILE=0,ID=1,STATUS=2,CHARGE=3,PATIENT=4,PAYER=5,PROVIDER=6,RULES=7,SUBMISSION=8,
    DETAIL=9,HELD=10,RELATED=11;
var WORDS={rejected:'rejected',warned:'accepted with warnings',accepted:'accepted'};
var RANK={rejected:0,warned:1,accepted:2};
var data,claims,details=null,parsed=new Map();
var anchors=[],byAnchor=new Map(),bySubmission=new Map(),earlier=new Map();
var order=[],page=0,size=100,sortColumn=null,sortDown=true,open=new Set(),landed=-1;
var filters=document.querySelectorAll('.filters select, .filters input');
var shown=document.getElementById('shown'),where=document.getElementById('rows-shown');

function el(tag,cls,text){
  var node=document.createElement(tag);
  if(cls){node.className=cls;}
  if(text!==undefined&&text!==null){node.textContent=String(text);}
  return node;
}
function add(parent){
  for(var i=1;i<arguments.length;i++){
    var c=arguments[i];
    parent.appendChild(typeof c==='string'?document.createTextNode(c):c);
  }
  return parent;
}
function link(text,href,cls){var a=el('a',cls,text);a.href=href;return a;}

function unpack(id){  // a data block: base64 of gzip of UTF-8 text
  var text=atob(document.getElementById(id).textContent),bytes=new Uint8Array(text.length);
  for(var i=0;i<text.length;i++){bytes[i]=text.charCodeAt(i);}
  var stream=new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).text();
}
function findings(i){  // a claim's detail, read from its line when first wanted
  if(!parsed.has(i)){parsed.set(i,JSON.parse(details[i]));}
  return parsed.get(i);
}

function index(){
  claims=data.claims;
  for(var i=0;i<claims.length;i++){
    var c=claims[i],base='claim-'+(c[FILE]+1)+'-'+c[ID].replace(/\s/g,'_'),a=base,n=1;
    while(byAnchor.has(a)){n++;a=base+'-'+n;}  // the same CLM01 again in a file
    anchors.push(a);byAnchor.set(a,i);
    var key=data.submissions[c[SUBMISSION]]+'\u0000'+c[ID];
    if(!bySubmission.has(key)){bySubmission.set(key,i);}
  }
  claims.forEach(function(c,i){
    c[RELATED].forEach(function(ref){
      if(resolve(ref)!==undefined){return;}
      if(!earlier.has(ref)){earlier.set(ref,{id:'earlier-'+(earlier.size+1),by:[]});}
      earlier.get(ref).by.push(i);
    });
  });
}

function split(ref){  // "CLM01 (submission SENDER:CONTROL)" -> [CLM01, SENDER:CONTROL]
  var m=/^([\s\S]*) \(submission ([\s\S]*)\)$/.exec(ref);
  return m?[m[1],m[2]]:[ref,''];
}
function resolve(ref){var p=split(ref);return bySubmission.get(p[1]+'\u0000'+p[0]);}

function wanted(){
  var want={};
  filters.forEach(function(f){want[f.name]=f.value;});
  var rule=want.rule?data.rules.indexOf(want.rule):-1,
      payer=want.payer?data.payers.indexOf(want.payer):-1,
      provider=want.provider?data.providers.indexOf(want.provider):-1,
      file=want.file?data.files.indexOf(want.file):-1,
      text=(want.q||'').trim().toLowerCase();
  return function(c){
    return (!want.status||c[STATUS]===want.status)&&
      (!want.rule||c[RULES].indexOf(rule)>=0)&&
      (!want.payer||c[PAYER]===payer)&&(!want.provider||c[PROVIDER]===provider)&&
      (!want.file||c[FILE]===file)&&
      (!text||c[ID].toLowerCase().indexOf(text)>=0);
  };
}

var KEYS={
  claim:function(c){return c[ID];},file:function(c){return data.files[c[FILE]];},
  status:function(c){return RANK[c[STATUS]];},charge:function(c){return parseFloat(c[CHARGE])||0;},
  patient:function(c){return c[PATIENT];},payer:function(c){return data.payers[c[PAYER]];},
  provider:function(c){return data.providers[c[PROVIDER]];},
  rules:function(c){return c[RULES].map(function(r){return data.rules[r];}).join(' ');}
};

function filter(){
  var ok=wanted();
  order=[];
  for(var i=0;i<claims.length;i++){if(ok(claims[i])){order.push(i);}}
  if(sortColumn){
    var key=KEYS[sortColumn],sign=sortDown?1:-1;
    order.sort(function(a,b){
      var x=key(claims[a]),y=key(claims[b]);
      return sign*(typeof x==='number'?x-y:String(x).localeCompare(String(y)));
    });
  }
  shown.textContent=order.length;
}

function row(i){
  var c=claims[i],tr=el('tr'),rules=c[RULES].map(function(r){return data.rules[r];});
  tr.id=anchors[i];
  tr.dataset.status=c[STATUS];tr.dataset.rules=rules.join(' ');
  tr.dataset.payer=data.payers[c[PAYER]];tr.dataset.provider=data.providers[c[PROVIDER]];
  tr.dataset.file=data.files[c[FILE]];
  if(open.has(i)){tr.classList.add('open');}
  if(i===landed){tr.classList.add('landed');}
  var a=link(c[ID],'#'+anchors[i],'claim-link');
  a.addEventListener('click',function(e){e.preventDefault();toggle(i);});
  var cell=el('td','rules');
  rules.forEach(function(r,n){add(cell,n?' ':'',el('span',null,r));});
  add(tr,add(el('td','id'),a),el('td',null,data.files[c[FILE]]),
      add(el('td'),el('span','status '+c[STATUS],WORDS[c[STATUS]])),
      el('td','num',c[CHARGE]),el('td',null,c[PATIENT]),el('td',null,data.payers[c[PAYER]]),
      el('td',null,data.providers[c[PROVIDER]]),cell);
  return tr;
}

function related(ref,from){
  var p=split(ref),i=resolve(ref);
  if(i===undefined){
    return link('claim '+p[0]+' (earlier submission)','#'+earlier.get(ref).id,'related earlier');
  }
  var file=claims[i][FILE];
  return link('claim '+p[0]+(file===from?'':' (in '+data.files[file]+')'),'#'+anchors[i],
              'related');
}

function detail(i){
  var c=claims[i],box=el('div','claim');
  add(box,add(el('h3',null,'Claim '+c[ID]+' '),el('span','status '+c[STATUS],WORDS[c[STATUS]])));
  add(box,el('p',null,'file '+data.files[c[FILE]]+'; charge '+c[CHARGE]+'; patient '+
    c[PATIENT]+'; payer '+data.payers[c[PAYER]]+'; billing provider '+data.providers[c[PROVIDER]]));
  if(c[HELD]){  // what made the payer reject its set or interchange is the file's
    add(box,add(el('p','held'),'Held with its transaction set or interchange: see ',
      link('the problems of its file','#file-'+(c[FILE]+1)),'.'));
  }
  if(c[DETAIL]&&!details){
    add(box,el('p',null,'Reading the findings\u2026'));
    return wrap(box);
  }
  var groups=c[DETAIL]?findings(i):[];
  if(!groups.length&&!c[HELD]){add(box,el('p',null,'No findings.'));}
  groups.forEach(function(group){
    group[0].forEach(function(f){
      var p=add(el('p','finding'),el('span',f[0],f[0].toUpperCase()),
        ' '+f[1]+(f[2]?' ['+f[2]+']':'')+(f[3]?', service line '+f[3]:'')+': '+f[4]);
      if(f[5]&&f[5].length){
        add(p,' See ');
        f[5].forEach(function(ref,n){if(n){add(p,', ');}add(p,related(ref,c[FILE]));});
        add(p,'.');
      }
      box.appendChild(p);
    });
    var ctx=group[1],pre=el('pre');
    ctx[0].forEach(function(r,n){
      var line=(r[0]===null?'':String(r[0])).padStart(6,' ')+'  ';
      if(n===ctx[1]){
        var span=add(el('span','here'),line+ctx[2]);
        if(ctx[3]){add(span,el('mark',null,ctx[3]),ctx[4]);}
        add(pre,span,'\n');
      }else{add(pre,el('span',null,line+r[1]),'\n');}
    });
    box.appendChild(pre);
    group[2].forEach(function(fix){
      add(box,add(el('p','fix'),el('strong',null,'What to do: '),fix));
    });
  });
  return wrap(box);
}
function wrap(box){
  var td=el('td');td.colSpan=8;td.appendChild(box);
  return add(el('tr','detail'),td);
}

function render(){
  var pages=Math.max(1,Math.ceil(order.length/size));
  page=Math.min(Math.max(page,0),pages-1);
  var first=page*size,last=Math.min(order.length,first+size),rows=document.createDocumentFragment();
  for(var n=first;n<last;n++){
    var i=order[n];
    rows.appendChild(row(i));
    if(open.has(i)){rows.appendChild(detail(i));}
  }
  body.replaceChildren(rows);
  where.textContent=order.length?(first+1)+'\u2013'+last+' of '+order.length:'none';
  document.querySelectorAll('.pager button').forEach(function(b){
    var go=b.name;
    b.disabled=(go==='first'||go==='previous')?page===0:page>=pages-1;
  });
}

function toggle(i){
  if(open.has(i)){open.delete(i);}else{open.add(i);history.replaceState(null,'','#'+anchors[i]);}
  render();
}

function target(){  // the anchor the location names (a browser escapes some characters)
  var hash=location.hash.slice(1);
  if(byAnchor.has(hash)){return hash;}
  try{return decodeURIComponent(hash);}catch(e){return hash;}  // a stray '%'
}

function show(anchor){  // a link to a claim: open it and bring it to the top of the window
  var i=byAnchor.get(anchor);
  if(i===undefined){return false;}
  if(order.indexOf(i)<0){
    filters.forEach(function(f){f.value='';});
    filter();
  }
  page=Math.floor(order.indexOf(i)/size);
  open.add(i);landed=i;
  render();
  document.getElementById(anchor).scrollIntoView();
  return true;
}

function stubs(){
  var section=document.getElementById('earlier');
  if(!earlier.size){return;}
  earlier.forEach(function(entry,ref){
    var p=split(ref),box=el('div','claim stub'),h=el('h3',null,'Claim '+p[0]);
    box.id=entry.id;
    var named=add(el('p'),'Not in this report: sent in an earlier submission ('+p[1]+
      ') or kept in the claim history. Named by ');
    entry.by.forEach(function(i,n){
      if(n){add(named,', ');}
      add(named,link('claim '+claims[i][ID],'#'+anchors[i]));
    });
    add(named,'.');
    section.appendChild(add(box,h,named));
  });
  section.hidden=false;
}

function wire(){
  filters.forEach(function(f){
    f.addEventListener(f.tagName==='INPUT'?'input':'change',function(){page=0;filter();render();});
  });
  document.querySelectorAll('.pager button').forEach(function(b){
    b.addEventListener('click',function(){
      var pages=Math.ceil(order.length/size);
      page={first:0,previous:page-1,next:page+1,last:pages-1}[b.name];
      render();
    });
  });
  var pick=document.querySelector('.pager select');
  pick.addEventListener('change',function(){size=parseInt(pick.value,10);page=0;render();});
  document.querySelectorAll('#claims th.sortable').forEach(function(th){
    th.addEventListener('click',function(){
      var column=th.dataset.column;
      sortDown=!(sortColumn===column&&sortDown);sortColumn=column;
      document.querySelectorAll('#claims th.sortable').forEach(function(o){
        delete o.dataset.order;
      });
      th.dataset.order=sortDown?'asc':'desc';
      page=0;filter();render();
    });
  });
  document.querySelectorAll('.expand button').forEach(function(b){
    b.addEventListener('click',function(){
      var first=page*size,last=Math.min(order.length,first+size);
      for(var n=first;n<last;n++){
        if(b.name==='open'){open.add(order[n]);}else{open.delete(order[n]);}
      }
      render();
    });
  });
  function only(name,value){  // the table with one filter set, the others cleared
    filters.forEach(function(f){f.value=f.name===name?value:'';});
    page=0;filter();render();
  }
  document.querySelectorAll('a.to-claims').forEach(function(a){
    a.addEventListener('click',function(){only('file',a.dataset.file);});
  });
  [['by-rule','rule'],['by-payer','payer'],['by-provider','provider']].forEach(function(pair){
    var pick=document.querySelector('.filters select[name='+pair[1]+']');
    document.querySelectorAll('#'+pair[0]+' tbody tr td:first-child').forEach(function(td){
      var value=td.textContent;
      if(!Array.prototype.some.call(pick.options,function(o){return o.value===value;})){return;}
      var a=link(value,'#claims','filter-link');
      a.title='show these claims in the table';
      a.addEventListener('click',function(){only(pair[1],value);});
      td.replaceChildren(a);
    });
  });
  window.addEventListener('hashchange',function(){show(target());});
}

unpack('report-data').then(function(text){
  data=JSON.parse(text);index();wire();filter();render();
  performance.mark('scrubber-claims-shown');
  table.dataset.ready='true';
  stubs();
  if(location.hash){show(target());}
  return unpack('report-details');
}).then(function(text){
  details=text.split('\n');
  table.dataset.details='true';
  if(open.size){render();}
}).catch(function(e){
  var td=el('td',null,'The claims could not be shown: '+e);td.colSpan=8;
  body.replaceChildren(add(el('tr'),td));
  throw e;
});
})();
"""


def csp_hash(text: str) -> str:
    """A CSP source naming an inline script or style by its SHA-256."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# the page runs its one script and its one style sheet, and loads nothing
POLICY = (f"default-src 'none'; script-src {csp_hash(SCRIPT)}; style-src {csp_hash(CSS)}; "
          "base-uri 'none'; form-action 'none'")
