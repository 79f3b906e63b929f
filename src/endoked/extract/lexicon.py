"""Vocabulary of colonoscopy reports in English and Chinese, as regular-expression fragments.

Every table is a list of ``(value, pattern)`` pairs. Order matters: at one text position the first
alternative that matches wins, so longer and more specific phrases come first (``sessile serrated
lesion`` before ``sessile``, ``直肠乙状结肠交界`` before ``直肠``). Patterns are matched case-insensitively
on text normalised by :func:`endoked.extract.text.normalize` (full-width forms folded to ASCII, dashes
unified); ``(?-i:...)`` marks abbreviations that must keep their case (``NET`` vs "Roth net").
"""

from __future__ import annotations

Table = list[tuple[str, str]]

_B = r"(?<![A-Za-z])"  # left word boundary that also works next to CJK characters
_E = r"(?![A-Za-z])"  # right word boundary

# ---------------------------------------------------------------------------------------------------
# Polyp mentions. Values are kinds: polyp, adenoma, ssl, lst, pseudo, polyposis, lesion (a generic
# lesion/elevation that counts as a polyp only next to a polyp morphology), elevation (隆起).
POLYP: Table = [
    ("lst", r"lateral(?:ly)?[- ]spreading\s+(?:tumou?rs?|lesions?|neoplasms?|adenomas?)"),
    ("lst", _B + r"(?-i:LSTs?)(?:[- ](?:(?-i:G|NG|GH|GM|NG-F|NG-PD)|granular|non-?granular))?" + _E),
    ("lst", r"侧向发育型?(?:肿瘤|病变|息肉)?"),
    ("adenoma", r"traditional\s+serrated\s+adenomas?"),
    ("ssl", r"(?:sessile\s+)?serrated\s+(?:adenomas?|lesions?|polyps?)(?:\s*/\s*polyps?)?"),
    # (not the Specialist Screening Practitioner of a screening programme's report: "SSP: Dr A. Hussain")
    ("ssl", _B + r"(?-i:SS[ALP]s?(?:/Ps?)?)" + _E + r"(?!\s*[:：]|\s+(?:assessment|clinic|nurse|review))"),
    ("adenoma", _B + r"(?-i:TSAs?)" + _E),
    ("polyp", _B + r"(?-i:HPs?)" + _E),  # hyperplastic(-appearing) polyp: "Rect 3mm HP, left in situ"
    ("ssl", r"锯齿状(?:腺瘤|病变|息肉)"),
    ("pseudo", r"(?:inflammatory\s+)?pseudo-?\s?polyps?" + _E),
    ("polyposis", r"polyposis" + _E),
    (
        "polyp",
        r"(?:polypoid(?:al)?|polyp-?like)\s+(?:lesions?|growths?|nodules?|areas?|elevations?|tissue|mucosa|projections?|"
        r"excrescences?|structures?|changes?)" + _E,
    ),
    # what is left of, or came back at, an earlier resection is a polyp of this exam ("a 4 mm island of residual
    # adenomatous tissue at the scar", "瘢痕处见残留病变")
    (
        "adenoma",
        r"(?:residual|recurrent)\s+(?:adenomatous|neoplastic|polypoid)(?:[- ]?(?:looking|appearing))?\s+"
        r"(?:tissue|lesions?|growths?)" + _E,
    ),
    ("adenoma", r"adenomatous\s+tissue" + _E),
    # the heading of a polyp table or list names no polyp of its own ("Colonoscopy - polyp summary", "POLYP TABLE")
    # (and a form's field about the polyp: "Polyp location: Transverse colon", "Polyp size: 5 mm")
    (
        "heading",
        r"polyps?\s+(?:summary|table|list|log|details|register)" + _E + r"|息肉(?:情况|列表|汇总|一览)|"
        r"polyps?\s+(?:location|site|size|type|morphology|shape|removal|retrieval|description)(?=\s*[:：])|"
        # an EHR export's field name ("POLYP_COMMENT: …", "POLYP_FOUND: Suspected")
        r"polyps?_[a-z]+(?=\s*[:：=])",
    ),
    ("polyp", r"(?:polyps?|polpys?|ployps?|poylps?)" + _E),  # with the common typos
    ("adenoma", r"adenomas?" + _E),
    ("pseudo", r"假性?息肉"),
    ("polyposis", r"息肉病"),
    ("polyp", r"息肉样(?:隆起|病变|增生)?"),
    ("polyp", r"息肉"),
    ("adenoma", r"腺瘤(?:性息肉)?"),
    (
        "elevation",
        # not the raised rim of an ulcerated mass ("边缘呈堤样隆起", "环堤状隆起")
        r"(?<!黏膜下)(?<!粘膜下)(?<!外压性)(?<!外压)(?<!堤样)(?<!堤状)(?<![环周]堤)(?<=[见枚个处米mM小大样平状形型起蒂基一\d肠曲])"
        r"隆起(?:性|型)?(?:病变|病灶)?(?!型?(?:肿物|肿块|癌|占位|新生物))",
    ),
    ("lesion", _B + r"(?:lesions?|nodules?|growths?|elevations?|protrusions?)" + _E),
    ("polyp", r"(?:残留|残余|复发)的?(?:病变|病灶|组织|隆起)"),
    ("lesion", r"(?:病变|病灶)"),
]

# Malignancy / mass mentions (not polyps).
MALIGNANCY: Table = [
    ("mal", r"(?:adeno)?carcinomas?" + _E),
    # (not the name of a programme or a place: "Bowel Cancer Screening Programme", "Hereditary GI Cancer Program")
    (
        "mal",
        r"cancer(?:s|ous)?"
        + _E
        + r"(?!\s+(?:screening|program(?:me)?|cent(?:re|er)|institute|service|clinic|unit|hospital|network|registry|"
        r"prevention|genetics?))",
    ),
    ("mal", r"malignan(?:t|cy|cies)" + _E),
    ("mal", _B + r"mass(?:es)?" + _E),
    ("mal", _B + r"(?<!neuroendocrine\s)(?<!carcinoid\s)tumou?rs?" + _E),
    ("mal", _B + r"(?-i:CRC)" + _E + r"(?![-‐]\w)"),  # not a study's code, "CRC-PREV-02"
    ("mal", r"fungating|apple[- ]core"),
    ("mal", r"infiltrat(?:ive|ing)" + _E),
    ("mal", r"(?<!non-)(?<!non)(?<!minimally )invasi(?:ve|on)" + _E),
    # a neuroendocrine carcinoma is a cancer; a (well-differentiated) neuroendocrine tumour is a look-alike below
    ("mal", r"neuroendocrine\s+carcinomas?"),
    ("mal", _B + r"(?-i:GIST)" + _E),  # a NET or carcinoid is a look-alike (MIMIC below), no cancer
    ("mal", r"lymphomas?|sarcomas?|metasta(?:sis|ses|tic)" + _E),
    ("mal", _B + r"NICE\s*(?:type\s*)?(?:3|III)" + _E),
    ("mal", _B + r"JNET\s*(?:type\s*)?(?:3|2B)" + _E),
    ("mal", r"kudo\s*(?:pit\s*pattern\s*)?(?:type\s*)?V[IN]" + _E),
    # 类癌 is a carcinoid; 防癌筛查 (cancer screening), 癌症中心 and 肿瘤医院 name a service, not a finding
    # (癌前病变 is precancerous: no cancer)
    ("mal", r"(?<!类)(?<!防)癌(?!胚|前|症?(?:筛查|早筛|中心|医院|研究所))(?:变)?"),
    ("mal", r"恶(?:性|变)(?:肿瘤|病变)?"),
    # (a mass outside the bowel pressing on it, "盆腔占位压迫", is no colonic cancer)
    ("mal", r"(?<!盆腔)(?<!腹腔)(?<!腹膜后)(?:肿物|肿块|占位(?:性病变)?|新生物)|菜花样?"),
    ("mal", r"(?<!神经内分泌)肿瘤(?!性|医院|科|中心|研究所)"),  # a neuroendocrine tumour is a look-alike (MIMIC below)
    ("mal", r"(?<!脂肪)浸润|淋巴瘤|间质瘤|转移"),  # 脂肪浸润: fatty infiltration
    ("mal", r"(?<=[\u4e00-\u9fff])(?-i:Ca|MT)" + _E),
    ("mal", r"(?<![A-Za-z])\?\s?(?:early\s+)?(?-i:Ca)" + _E + "|" + _B + r"(?-i:Ca)\s?\?"),  # "?Ca", "Ca?"
]

# Look-alikes: lesions that are not polyps. A vague elevation/lesion/"polypoid" mention explained as one
# of these ("隆起，考虑脂肪瘤", "nodules consistent with lymphoid hyperplasia"), or one of these described
# as polyp-like ("憩室内翻呈息肉样"), is not a polyp.
MIMIC: Table = [
    ("mimic", r"lipoma(?:s|tous)?" + _E + r"|diverticul(?:um|a|ar|osis)" + _E + r"|h(?:a)?emorrhoid(?:s|al)?" + _E),
    ("mimic", r"(?:anal\s+)?papilla(?:e|ry\s+hypertrophy)?" + _E + r"|skin\s+tags?" + _E),
    ("mimic", r"lymphoid\s+(?:hyperplasia|aggregates?|follicles?|nodules?|tissue)" + _E),
    (
        "mimic",
        r"(?:appendiceal|appendix)\s+stump|inverted\s+append\w*|(?:mucosal|haustral|prominent|semilunar)\s+(?:semilunar\s+)?folds?"
        + _E
        + r"|(?:mucosal|mucosa|rectal)\s+prolapse"
        + _E,
    ),
    ("mimic", r"angio-?\s?(?:ectasias?|dysplas(?:ia|ias|tic))|" + _B + r"(?-i:AVMs?)" + _E + r"|vascular\s+ectasias?"),
    (
        "mimic",
        r"extrinsic\s+compression|varix|varices|(?:stool|fecal|faecal)\s+(?:ball|debris|residue)|"
        r"(?:adherent|retained|residual|stuck)\s+(?:stool|faeces|feces|faecal\s+matter)" + _E,
    ),
    ("mimic", r"xanthomas?" + _E + r"|黄色瘤|黄斑瘤"),
    # a small rectal neuroendocrine tumour is a submucosal nodule, not a polyp (and no suspected cancer)
    (
        "mimic",
        r"neuroendocrine\s+(?:tumou?rs?|neoplasms?)" + _E + r"|carcinoids?" + _E + r"|神经内分泌(?:肿瘤|瘤)|类癌",
    ),
    # A submucosal mass or tumour is a look-alike, not a suspected cancer ("黏膜下肿物", "subepithelial mass").
    (
        "mimic",
        r"(?:submucosal|subepithelial)(?!\s+(?:inject\w*|dissection|lift\w*|cushion|invasi\w*|fibrosis))"
        r"(?:\s+(?:mass(?:es)?|tumou?rs?|lesions?|nodules?|bulges?))?" + _E,
    ),
    (
        "mimic",
        r"血管(?:扩张|畸形|发育不良|瘤)|脂肪瘤|憩室|(?:内|外|混合)痔|痔核|肛乳头|淋巴(?:滤泡|组织|小结)|皱襞|粪(?:石|块|渣)|外压|静脉曲张|"
        r"(?:黏膜|粘膜)脱垂|(?:缺血性|假膜性|伪膜性)(?:结肠炎|肠炎)|脂肪浸润|(?:肠|结肠)?气囊肿(?:症)?|"
        r"pneumatosis(?:\s+(?:cystoides\s+)?(?:coli|intestinalis))?",
    ),
    (
        "mimic",
        r"(?:黏膜下|粘膜下)(?!注射|剥离|浸润|层)(?:(?:隆起|肿物|肿块|占位|新生物|肿瘤|病变|结节)(?:样|性|型)?"
        r"(?:隆起|病变|病灶)?)?|阑尾残端|平滑肌瘤",
    ),
]

# Locations: contract values.
LOCATION: Table = [
    # the Latin and continental names of English reports written in German, Dutch or Swiss units ("colon ascendens",
    # "Sigma", "coecum", "right flexure", "Bauhin's valve")
    ("ascending", _B + r"(?:colon\s+)?ascendens" + _E),
    ("transverse", _B + r"(?:colon\s+)?transversum" + _E),
    ("descending", _B + r"(?:colon\s+)?descendens" + _E),
    ("sigmoid", _B + r"(?:(?:colon\s+)?sigmoideum|sigma|sigmoïd(?:\s+colon)?)" + _E),
    ("cecum", _B + r"co?ec(?:um|al)" + _E),
    ("hepatic_flexure", _B + r"(?:right\s+(?:colic\s+)?flexure|flexura\s+(?:coli\s+)?(?:hepatica|dextra))" + _E),
    (
        "splenic_flexure",
        _B + r"(?:left\s+(?:colic\s+)?flexure|flexura\s+(?:coli\s+)?(?:lienalis|splenica|sinistra))" + _E,
    ),
    ("ileocecal_valve", _B + r"(?:bauhin(?:'s|s)?\s+valve|valvula\s+bauhini)" + _E),
    # the whole colon named as a range ("throughout (caecum to rectum)", "回盲部至直肠") is no one segment
    (
        "unspecified",
        r"(?:from\s+(?:the\s+)?)?ca?ecum\s+to\s+(?:the\s+)?(?:rectum|anus|anal\s+verge)|(?:回盲部|盲肠)(?:至|到)(?:直肠|肛门)",
    ),
    ("rectosigmoid", r"recto-?\s?sigmoid(?:\s+(?:junction|colon|region|area))?"),
    ("rectosigmoid", r"sigmoid-?\s?rectal\s+junction|" + _B + r"(?-i:RS)(?:\s*junction|" + _E + ")"),
    (
        "rectosigmoid",
        r"直(?:肠)?乙(?:状结肠|状)?(?:交界|移行)(?:处|部)?|"
        r"乙(?:状结肠|状)?直(?:肠)?(?:交界|移行)(?:处|部)?",
    ),
    # the wall opposite the valve is the caecum (回盲瓣对侧)
    ("cecum", r"回盲瓣对侧|opposite\s+(?:to\s+)?(?:the\s+)?(?:ileo-?\s?ca?ecal\s+valve|(?-i:ICV)|valve)" + _E),
    (
        "ileocecal_valve",
        r"ileo-?\s?ca?ecal\s+(?:valve|junction)|"
        + _B
        + r"I-?C\s*valve"
        + _E
        + "|"
        + _B
        + r"(?-i:ICV)"
        + _E
        + r"|回盲[瓣办]",
    ),
    # near the orifice is the caecum (its rim, or right next to it, is the orifice: "Caecum - on the rim of the
    # appendiceal orifice")
    (
        "appendiceal_orifice",
        _B + r"ca?ecum\s*[-,:(]?\s*(?:on|at)\s+the\s+(?:rim|edge|margin|lip)\s+of\s+the\s+appendi(?:ceal|x)\s+orifice",
    ),
    (
        "cecum",
        r"(?:near|close\s+to)\s+(?:the\s+)?(?:appendi(?:ceal|x)\s+(?:orifice|opening)|"
        r"(?-i:AO))" + _E,
    ),
    (
        "appendiceal_orifice",
        r"appendi(?:ceal|x|cular)\s+(?:orifice|opening)|orifice\s+of\s+the\s+appendix|"
        + _B
        + r"(?-i:AO)"
        + _E
        + r"|阑尾(?:开)?口|阑尾窝",
    ),
    ("cecum", _B + r"ca?ec(?:um|al)" + _E + r"|回盲部|盲肠|回盲区"),
    # a flexure's junction with the next segment is the flexure ("hepatic flexure/proximal transverse junction")
    # (肝曲与横结肠交界处)
    (
        "hepatic_flexure",
        r"hepatic\s+flexure\s*/\s*(?:proximal\s+|distal\s+)?(?:transverse|ascending)(?:\s+colon)?\s+junction|"
        r"junction\s+of\s+the\s+hepatic\s+flexure\s+(?:and|with)\s+(?:the\s+)?(?:proximal\s+|distal\s+)?"
        r"(?:transverse|ascending)(?:\s+colon)?|"
        r"(?:结肠)?肝曲(?:与|和)?(?:横结肠|升结肠)(?:交界|移行)(?:处|部)?|"
        r"(?:横结肠|升结肠)(?:与|和)?(?:结肠)?肝曲(?:交界|移行)(?:处|部)?",
    ),
    (
        "splenic_flexure",
        r"splenic\s+flexure\s*/\s*(?:proximal\s+|distal\s+)?(?:transverse|descending)(?:\s+colon)?\s+junction|"
        r"junction\s+of\s+the\s+splenic\s+flexure\s+(?:and|with)\s+(?:the\s+)?(?:proximal\s+|distal\s+)?"
        r"(?:transverse|descending)(?:\s+colon)?|"
        r"(?:结肠)?脾曲(?:与|和)?(?:横结肠|降结肠)(?:交界|移行)(?:处|部)?|"
        r"(?:横结肠|降结肠)(?:与|和)?(?:结肠)?脾曲(?:交界|移行)(?:处|部)?",
    ),
    # the splenic flexure-descending junction is the splenic flexure ("SF/DC junction")
    (
        "splenic_flexure",
        r"(?:splenic\s+flexure|" + _B + r"(?-i:SF))\s*[-/]\s*(?:descending(?:\s+colon)?|(?-i:DC))\s+junction",
    ),
    ("hepatic_flexure", r"hepatic\s+flexure|right\s+colic\s+flexure|" + _B + r"(?-i:HF)" + _E + r"|(?:结肠)?肝曲|肝区"),
    ("splenic_flexure", r"splenic\s+flexure|left\s+colic\s+flexure|" + _B + r"(?-i:SF)" + _E + r"|(?:结肠)?脾曲|脾区"),
    (
        "ascending",
        r"as?c?ending(?:\s+colon)?|"
        + _B
        + r"asc\.?(?:\s*colon)?"
        + _E
        + "|"
        + _B
        + r"a[-/]\s?colon|"
        + _B
        + r"(?-i:AC)"
        + _E
        + r"|升结肠?|生结肠",  # (生结肠: an input-method slip)
    ),
    (
        "transverse",
        r"(?:transverse|trnasverse|tranverse|transvers|transervse)(?:\s+colon)?|"
        + _B
        + r"trans\.?\s*colon|"
        + _B
        + r"t[-/]\s?colon|"
        + _B
        + r"(?-i:TC)"
        + _E
        + r"|横结肠?",
    ),
    # the descending-sigmoid junction is the sigmoid (降乙交界, below)
    ("sigmoid", r"descending(?:\s+colon)?\s*[-/]\s*sigmoid(?:\s+colon)?\s+junction"),
    (
        "descending",
        r"de(?:s|sc|c)ending(?:\s+colon)?|"
        + _B
        + r"desc\.?(?:\s*colon)?"
        + _E
        + "|"
        + _B
        + r"d[-/]\s?colon|"
        + _B
        + r"(?-i:DC)"
        + _E
        + r"|降结肠?",
    ),
    (
        "sigmoid",
        r"sigm(?:oi|io)d(?!oscop)(?:\s+colon)?|"
        + _B
        + r"(?-i:SC)"
        + _E
        + "|"
        + _B
        + r"sig\.?(?:\s*colon)?"
        + _E
        + "|"
        + _B
        + r"s[-/]\s?colon|"
        r"乙[状壮]结肠|乙结肠|乙状|降乙(?:状结肠)?(?:交界|移行)(?:处|部)?",
    ),
    (  # a Hartmann's rectal stump is the rectum (not the stump of the appendix)
        "rectum",
        r"rect(?:um|al)" + _E + "|" + _B + r"rect" + _E + r"|直肠|"
        r"(?:hartmann'?s\s+)?(?<!appendiceal\s)(?<!appendix\s)(?<!appendicular\s)stump" + _E,
    ),
    (
        "ileum",
        r"(?:neo-?\s?)?(?:terminal\s+)?ile(?:um|al)"
        + _E
        + "|"
        + _B
        + r"(?-i:TI)"
        + _E
        + r"|(?:末端|终末)回肠|回肠(?:末端|末段)?|"
        r"(?:ileal\s+|j-?\s?)?pouch(?:\s+body)?" + _E + r"|(?:回肠)?储袋",  # an ileal pouch (IPAA) is ileum
    ),
    (
        "anastomosis",
        r"(?:(?:ileo|colo|ileo-?colic|colo-?colonic|ileo-?rectal|colo-?rectal|ileo-?anal)"
        r"[- ]?)?anastomo(?:sis|tic)" + _E + r"|staple\s+line|吻合口",
    ),
    ("unspecified", r"结直肠|大肠|全结肠|colorectal|large\s+bowel|colonic"),
]

# Morphology. "paris"/"yamada" values are resolved by :func:`morph_value`.
MORPHOLOGY: Table = [
    (
        "paris",
        r"(?:paris\s*(?:class(?:ification)?|type)?\s*)?(?:type\s*)?0\s*-\s*(?:I{1,3}[abcps]{0,3})"
        r"(?:\s*\+\s*I{1,3}[abcps]{0,3})?" + _E,
    ),
    ("paris", r"paris\s*(?:class(?:ification)?\s*)?(?:type\s*)?(?:I[ps]{1,2}|II[abc]|Ip|Is)" + _E),
    ("yamada", r"yamada\s*(?:type\s*)?(?:IV|I{1,3}|[1-4])" + _E),
    ("yamada", r"山田\s*(?:分型)?\s*[:：]?\s*(?:[ⅠⅡⅢⅣ]|IV|I{1,3}|[1-4一二三四])\s*型?"),
    ("sessile", r"semi-?\s?pedunculated|sub-?\s?pedunculated|sess?ile?|broad-?\s?based|亚蒂|无蒂|无茎|广基|宽基"),
    (
        "pedunculated",
        r"pedun?c?ul?a?ted|pedunc\.|stalked|(?:on|with)\s+an?\s+(?:\w+\s+)?stalk|"
        r"有蒂|带蒂|长蒂|粗蒂|短蒂|细蒂|蒂部|蒂",
    ),
    (
        "flat",
        # whole words only: "insufflation" names no shape
        _B
        + r"flat(?:\s+elevated)?|slightly\s+(?:elevated|raised)|superficial(?:ly)?\s+elevated|"
        + _B
        + r"depressed|扁平|平坦|浅表隆起|表浅",
    ),
]

# Removal: "yes" (removed) and "no" (explicitly left, biopsied only, referred).
REMOVAL: Table = [
    (
        "no",
        r"(?:was|were)\s+not\s+(?:removed|resected|excised)|not\s+(?:removed|resected|excised)|"
        r"left\s+in\s+(?:situ|place)|unresectable|(?:will|to)\s+be\s+(?:removed|resected)|"
        r"(?:referred|scheduled|planned)\s+for(?:\s+(?:repeat|later|staged|endoscopic|surgical|an?))*"
        r"(?:\s+(?:EMR|ESD|resection|removal|polypectomy|surgery))?|deferred|too\s+large\s+for(?:\s+\w+){0,2}|"
        r"for\s+(?:later|future|subsequent|staged)\s+(?:removal|resection|EMR|ESD)",
    ),
    ("yes", r"cold\s+biops(?:y|ies)(?:\s+forceps)?|(?:cold|hot|jumbo)\s+forceps"),
    ("no", r"biopsied|biops(?:y|ies)\s+(?:was|were\s+)?(?:taken|obtained|performed)"),
    (
        "yes",
        r"removed|resected|excised|polypectom(?:y|ies)|snared?|(?:cold|hot)\s+snare(?:d)?|"
        r"endoscopic\s+(?:mucosal\s+resection|submucosal\s+dissection)|en\s*bloc|piecemeal|retrieved|"
        r"argon\s+plasma(?:\s+coagulation)?|ablated|fulgurated|" + _B + r"(?-i:EMR|ESD|EPMR|APC|CSP|HSP|CFP)" + _E,
    ),
    (
        "no",
        r"未(?:予|行)?(?:切除|处理|摘除)|暂未(?:切除|处理)|择期(?:切除|行|治疗)|"
        r"建议(?:行)?(?:EMR|ESD|内镜下切除|手术|外科)|(?:取|行)?活检",
    ),
    ("yes", r"切除|(?:冷|热)?圈套(?:器)?|钳除|电切|摘除|灼除|电凝|氩(?:离子|气)(?:凝固|刀)?|回收"),
]

# Pathology categories (for pathology sections, the pathology field and "pathology showed ..." clauses).
PATHOLOGY: Table = [
    (
        "other",
        r"squamous\s+cell\s+carcinoma|malignant\s+lymphoma|neuroendocrine\s+(?:tumou?r|carcinoma|"
        r"neoplasm)|carcinoid|鳞(?:状细胞)?癌|神经内分泌(?:肿瘤|癌)?|类癌",
    ),
    (
        "sessile_serrated",
        r"(?:sessile\s+)?serrated\s+(?:adenoma|lesion|polyp)s?(?:\s*/\s*polyps?)?|"
        + _B
        + r"(?-i:SS[ALP]s?(?:/Ps?)?)"
        + _E
        + r"|(?:无蒂|广基)?锯齿状(?:腺瘤|病变|息肉)",
    ),
    ("adenocarcinoma", r"(?:adeno)?carcinoma|cancer|malignan(?:t|cy)|signet[- ]ring|腺癌|癌变|(?<!类)癌|恶性"),
    (
        "adenoma",
        r"(?:tubulo-?\s?villous|tubular|villous|traditional\s+serrated)\s+adenoma|adenomat\w*|"
        r"adenomas?"
        + _E
        + "|"
        + _B
        + r"(?-i:(?:TV?|TS)As?)"
        + _E
        + r"|传统锯齿状腺瘤|管状绒毛状腺瘤|绒毛状腺瘤|管状腺瘤|腺瘤",
    ),
    (
        "dysplasia",
        r"(?:high|low)[- ]grade\s+(?:dysplasia|intraepithelial\s+neoplasia)|dysplasia|"
        r"intraepithelial\s+neoplasia|"
        + _B
        + r"(?-i:HGD|LGD)"
        + _E
        + r"|(?:高|低)级别(?:上皮内)?瘤变|上皮内瘤变|异型增生",
    ),
    ("hyperplastic", r"hyperplastic|" + _B + r"(?-i:HPs?)" + _E + r"|增生性(?:息肉)?"),
    (
        "inflammatory",
        r"inflammatory\s+(?:pseudo-?\s?|myoglandular\s+)?polyps?|pseudo-?\s?polyps?|post-?inflammatory\s+polyps?|"
        r"炎性(?:假)?息肉|炎症性息肉|假(?:性)?息肉",
    ),
    (
        "other",
        r"lipoma|hamartoma\w*|juvenile\s+polyp|peutz|lymphoid\s+(?:aggregate|hyperplasia|follicle)s?|"
        r"leiomyoma|lymphoma|ganglioneuroma|schwannoma|"
        + _B
        + r"(?-i:GIST)"
        + _E
        + r"|(?:colonic|rectal|benign|normal|polypoid)\s+(?:\w+\s+)?mucosa|mucosal\s+prolapse|"
        r"colitis|inflammation|granulation\s+tissue|endometriosis|"
        r"脂肪瘤|错构瘤|幼年性息肉|淋巴(?:组织|滤泡)?(?:增生|样)|平滑肌瘤|淋巴瘤|间质瘤|炎症|慢性炎|急性炎|肉芽|"
        r"子宫内膜异位|黏膜|粘膜",
    ),
]

# Size: numbers with a unit; ranges, products and lists share a trailing unit.
# a decimal comma right before a unit is a decimal point ("0,6 cm"; "4, 6 mm" stays a list)
NUM = r"(?:\d+(?:\.\d+|,\d(?=\s*(?:mm|cm|毫米|厘米)))?|\.\d+)"
UNIT = r"(?:mm(?![a-z])|millimet(?:er|re)s?|cm(?![a-z])|centimet(?:er|re)s?|毫米|厘米|公分|㎜|㎝)"
SIZE_OP = r"(?:\s*(?:[x×*✕]|by|-|~|to|至|到|,?\s*and|or|和|及|与|、)\s*)"
SIZE = rf"(?<![\d.])(?:{NUM}(?:\s*{UNIT})?{SIZE_OP}){{0,3}}{NUM}\s*-?\s*{UNIT}"

# Context triggers (ConText-style). Kinds: pseudo (cancels), neg_f/neg_b (negation forward/backward),
# hedge_f/hedge_b/hedge_2 (uncertainty forward/backward/both sides), vague_s (uncertainty of a vague
# elevation/lesion mention, backward over the whole sentence, across commas), hedge_w/hist_w (the match itself
# is the scope), hist_f/hist_b (history, family, screening or hypothetical: not a current finding), hist_F
# (history forward to the end of the sentence, across commas), term (ends a scope).
CONTEXT: Table = [
    (
        "pseudo",
        r"no\s+(?:change|increase|significant\s+change|interval\s+change)|not\s+(?:only|all|every|"
        r"necessarily)|gram[- ]negative|无蒂|无茎|无法|有无|无痛|术后创面|不规则|良恶性|"
        r"[(（][^()（）]{0,12}术后[)）]",
    ),
    # a form's field answered no ("Cancer suspected: No"), before "suspected" is read as a hedge
    ("neg_b", r"(?:suspected|suspicion)\s*[:：]\s*(?:\[\s*[x✓✔]\s*\]\s*)?no(?=\s*(?:[,;|\n]|\.(?!\d)|$))"),
    # a finding glimpsed once and not found again on a second look is only possible ("Questionable polyp at the
    # caecal pole, not seen on second inspection"; "未能再次找到")
    (
        "hedge_b",
        r"(?:not|never)\s+(?:be\s+)?(?:seen|found|identified|relocated|located|visuali[sz]ed)\s+(?:again\s+)?"
        r"(?:on|at|during)\s+(?:a\s+|the\s+)?(?:second|repeat(?:ed)?|further|subsequent|re-?)\s*\w*|"
        r"(?:could|can)\s*not\s+be\s+(?:found|relocated|located|identified|seen)\s+again|"
        r"(?:could|can)\s*not\s+be\s+re-?(?:identified|found|located|visuali[sz]ed)|"
        r"(?:could|can)\s*(?:not|n't)\s+(?:find|locate|relocate|see)\s+(?:it|this|that|them|the\s+\w+)\s+again|"
        r"(?:未能|无法|未)再次?(?:找到|发现|见到)",
    ),
    ("hedge_b", r"(?:难以|不易|无法|不能|未能)(?:鉴别|区分|区别|确认|确定)|鉴别困难"),
    # a polyp or something that is no lesion at all ("考虑气泡或小息肉", "息肉或粪渣")
    (
        "hedge_2",
        r"(?:气泡|泡沫|粪便?|粪渣|粪块|黏液|皱襞|淋巴滤泡)或(?=(?:小)?息肉)|息肉或(?=(?:气泡|泡沫|粪|黏液|皱襞|淋巴滤泡))",
    ),
    # "… but a small hyperplastic polyp remained in the differential"
    ("hedge_b", r"(?:remain(?:s|ed)?|is|was|stays?)\s+(?:in|on)\s+the\s+differential"),
    # "the previously described polyp could not be found" (not "… found again", a glimpse: hedged above)
    ("neg_b", r"(?:could|can)\s*not\s+be\s+(?:found|located|identified)(?!\s+again)"),
    # "the preparation limits detection of small or flat lesions": a disclaimer
    ("hist_f", r"limit(?:s|ed|ing)?\s+(?:the\s+)?detection\s+of"),
    ("hist_f", r"(?:to|in\s+order\s+to)\s+(?:rule\s+out|exclude|r/o)|(?:以|为|需)排除"),
    # a finding's "r/o polyp" (rule out) or "t/c polyp" (to consider) names what the lesion may be
    ("hedge_f", _B + r"(?:r/o|t/c)" + _E),
    (
        "hedge_b",
        r"(?:cannot|can\s*not|could\s*not|can't|couldn't)\s+be\s+(?:(?:entirely|completely|fully|definitely)\s+)?"
        r"(?:excluded|ruled\s+out)|"
        r"not\s+(?:be\s+)?(?:excluded|ruled\s+out)|(?:is|was|are|were)\s+(?:possible|suspected|"
        r"questionable)",
    ),
    (
        "hedge_f",
        r"(?:cannot|can\s*not|could\s*not|can't|couldn't|unable\s+to)\s+(?:exclude|rule\s+out)|"
        r"possibl[ey]|possibility\s+of|questionabl[ey]|question\s+of|(?:raised\s+)?concern\s+for|"
        # "Query small flat lesion in the ascending colon" (a query, as "?")
        r"(?<![A-Za-z])query(?=\s+(?:[\w-]+\s+){0,3}(?:polyps?|lesions?|elevations?|nodules?))|"
        r"differential(?:\s+diagnosis)?\s*(?::|includes?|of)|there\s+appeared\s+to\s+be|"
        r"(?:appear(?:s|ed)?|seem(?:s|ed)?)\s+to\s+be(?=\s+an?\s+(?:[\w-]+\s+){0,2}(?:lesion|polyp|elevation|nodule|bump))|suspect(?:ed)?|suspicious\s+(?:for|of)|"
        r"suspicious(?=\s+(?:[a-z-]+\s+)?(?:polyp|polypoid|lesion|area|elevation|nodule|bump))|"
        r"concerning\s+for|worrisome\s+for|equivocal|indeterminate|presumed|"
        # "V.a." (Verdacht auf: suspicion of)
        r"(?<![A-Za-z])v\.\s?a\.(?=\s)|"
        # "not convincingly a polyp"
        r"not\s+(?:convincingly|clearly|definitely|certainly|obviously)(?=\s+(?:an?\s+)?(?:polyp|lesion))|"
        # "I am not convinced this is a polyp", "I thought I saw a tiny polyp"
        r"not\s+convinced\s+(?:that\s+)?(?:this|it|these)\s+(?:is|was|are|were|represents?)|thought\s+(?:I|we)\s+saw|"
        r"(?:may|might|could)\s+(?:represent|be)|(?:likely|probable|probably)(?=\s+(?:an?\s+)?"
        # (its size, shape or site between: "probable 3 mm flat polyp", "probable small rectal polyp"; not its type)
        r"(?:(?:small|tiny|diminutive|little|flat|sessile|raised|subtle|rectal|sigmoid|ca?ecal|colonic|"
        r"\d+(?:\.\d+)?\s*(?:mm|cm))\s+){0,3}(?:polyp|lesion))|"
        # "it could not be decided whether this was a small polyp or the crest of a fold"
        r"whether\s+(?:this|it|these|that|the\s+\w+)\s+(?:is|was|were|are|represent\w*|(?:might|could|would)\s+be)",
    ),
    (
        "neg_b",
        r"(?:(?:was|were|is|are)\s+)?not\s+(?:seen|identified|found|detected|visuali[sz]ed|present|"
        r"noted|observed|appreciated|demonstrated)|none\s+(?:seen|found|identified|noted|detected)|"
        # "Polyps: 0" (not "Paris: 0-IIa", "Size: 0.5 cm")
        r"[:\-=]\s*(?:none|negative|absent|nil|zero)" + _E + r"|[:=]\s*0(?=[ \t]*(?:[,;|\n]|\.(?!\d)|$))|"
        r"=\s*no(?=[ \t]*(?:[,;|\n]|\.(?!\d)|$))|"
        r"(?:were|was|is|are)\s+absent|ruled\s+out|"
        r"-\s?free" + _E + "|"  # "polyp-free colon"
        r":?\s*\[\s*\]\s*yes\s*\[\s*[x✓✔]\s*\]\s*no" + _E + "|"  # checkbox forms: "Polyps detected: [ ] Yes [x] No"
        r":?\s*\[\s*[x✓✔]\s*\]\s*(?:none|no|absent|nil)" + _E,  # "Polyps: [x] none [ ] yes"
    ),
    # Disclaimers: "small lesions may have been missed", "小病变可能漏诊" (what could be missed was not seen).
    (
        "hist_b",
        r"(?:may|might|could|can)\s+(?:have\s+been|be)\s+(?:missed|overlooked|hidden)|"
        r"(?:were|was)\s+(?:possibly\s+)?missed|(?:可能)?(?:漏诊|遗漏|漏检)",
    ),
    (
        "neg_f",
        # (not "No. 2", "No. of polyps: 2" or a table's "No. |" column)
        _B
        + r"no(?!\.?\s*(?:\d|of\s))(?!\.\s*\|)"
        + _E
        + r"|not\s+(?:a|any)"
        + _E
        + r"|without|negative\s+for|free\s+(?:of|from)|"
        r"absence\s+of|(?:relative\s+)?sparing\s+of|not\s+(?:diagnostic|typical|characteristic)\s+of|"
        # "a thickened fold was initially thought to be a polyp; on closer inspection …", "I did not find any polyps"
        r"(?:initially|originally|at\s+first)(?=\s+(?:polyp-?like|polypoid))|"
        r"(?:initially|originally|at\s+first|first)\s+(?:(?:thought|felt|suspected|believed|considered|taken|mistaken)\s+"
        r"(?:to\s+be|for|as)|looked\s+like|appeared\s+(?:to\s+be|as|like)|resembled)|(?:did|do|does|could)\s*(?:not|n't)\s+(?:find|see|identify|detect|visuali[sz]e)(?!\s+(?:it|this|that|them|the\s+\w+)\s+again)|"
        # "haemorrhagic bullae, not polyps"
        r"(?<![A-Za-z])not(?=\s+(?:true\s+|real\s+|actual\s+)?polyps?(?![A-Za-z]))|"
        r"insufficient\s+for\s+(?:a\s+)?diagnosis\s+of|"
        r"(?:does|do|did)\s+not\s+(?:meet|fulfil+)\s+(?:the\s+)?(?:[\w-]+\s+)?criteria\s+for|"
        + _B
        + r"(?:nor|neither|denies|never|nil|zero)"
        + _E,
    ),
    # ("DD": a differential diagnosis in reports from German-speaking units)
    ("hedge_2", _B + r"(?:vs\.?|versus|dd(?=\s+[a-z]))" + _E + r"|\?|？"),
    # a polyp or something that is no lesion at all ("a 6 mm raised area, polyp or adherent stool")
    (
        "hedge_2",
        r"(?<![a-z])or\s+(?:an?\s+)?(?:adherent|retained|residual)?\s*(?:stool|faeces|feces|debris|bubbles?|mucus)"
        + _E
        + r"|(?:stool|debris|faeces|feces)\s+or(?=\s+(?:an?\s+)?polyp)",
    ),
    # a field of earlier findings ("Previous: 2023 colonoscopy, polyps 1 and 2 (…)", "Last colonoscopy 2023: …")
    (
        "hist_F",
        r"(?:^|(?<=[.\n]))\s*(?:previous|prior|last)(?:\s+(?:findings|colonoscopy|exam\w*))?(?:\s+(?:19|20)\d\d)?\s*[:：]",
    ),
    (
        "hist_f",
        r"(?:personal\s+|family\s+)?history\s+of|"
        + _B
        + r"(?:hx|h/o|s/p|f/?hx|fh/o)"
        + _E
        + r"|status\s+post|surveillance\s+post|post[- ](?:EMR|ESD|polypectomy|resection)"
        + _E
        + "|"
        + _B
        + r"(?:prior|previous(?:ly)?|past|family|father|mother|brother|sister|sibling|parents?|"
        r"if|should|recommend(?:ed|ation)?|(?:first|second)[- ]degree|relatives?|uncle|aunt|cousin|"
        r"grand(?:father|mother|parents?))" + _E + r"|surveillance\s+(?:for|of|after)|"
        r"follow-?\s?up\s+(?:of|for|after)|screening\s+(?:for|of)|evaluat(?:e|ion)\s+(?:for|of)|"
        r"assess\s+for",
    ),
    # What another study found ("CT colonography reported a 7 mm polyp", "外院肠镜提示息肉") is not a
    # finding of this exam; the exam's own description of the polyp is.
    (
        "hist_f",
        _B + r"(?:ct(?:\s+colonography)?|ctc|virtual\s+colonoscopy|barium\s+enema|imaging|mri|pet(?:[- ]ct)?|"
        r"capsule(?:\s+endoscopy)?|(?:flexible\s+|flex\s+)?sigmoidoscopy|flex\s+sig|"
        r"outside\s+(?:colonoscopy|exam\w*|report|study)(?:\s+report)?)(?:\s*\([^()]{0,20}\))?(?:\s*:|\s+(?:showed|shows|"
        r"showing|reported|reports|revealed|reveals|suggested|suggests|suggesting|demonstrated|described|found|detected|"
        r"states?|stated|says|said))"
        + _E
        + "|"
        + _B
        + r"(?:ct(?:结肠成像|仿真结肠镜|结肠造影)?|ctc|mri|b超|钡剂灌肠|影像学?|外院(?:结?肠镜)?)(?:检查)?"
        r"(?:提示|示|发现|报告|诊断)",
    ),
    # a finding quoted from another unit's exam ("Referred with a 'polyp at 20 cm' on an outside flexible
    # sigmoidoscopy") and the "referral polyp" it names
    (
        "hist_b",
        r"(?:on|at|from)\s+an?\s+(?:outside|referring|external)\s+(?:rigid\s+|flexible\s+|flex\s+)?"
        r"(?:sigmoidoscopy|colonoscopy|endoscopy|exam\w*)" + _E + r"|per\s+(?:the\s+)?outside\s+records",
    ),
    ("hist_w", r"referral\s+(?:polyps?|lesions?)" + _E),
    (  # "polyp seen on rigid sigmoidoscopy", "a mass found on CT", "suspected to be a polyp on CT"
        "hist_b",
        r"(?:(?<=polyp)|(?<=lesion))\s+(?:on|at|by)\s+(?:ct(?:\s+colonography)?|ctc|imaging|mri|barium\s+enema)"
        + _E
        + "|"
        r"(?:seen|found|noted|detected|identified|shown|demonstrated|reported)\s+(?:on|at|by)\s+(?:an?\s+|the\s+)?"
        r"(?:recent\s+|prior\s+|previous\s+|earlier\s+|outside\s+|referring\s+)?(?:rigid\s+|flexible\s+|flex\s+)?"
        r"(?:sigmoidoscopy|sig"
        + _E
        + r"|ct(?:\s+colonography)?"
        + _E
        + r"|ctc|imaging|mri|pet(?:[- ]ct)?|barium\s+enema|"
        r"capsule(?:\s+endoscopy)?|ultrasound)",
    ),
    # "As you will recall, in 2021 we removed a 22 mm adenoma ...": a recollection, or a year that opens the sentence
    # (to the end of the sentence, over its commas)
    (
        "hist_F",
        r"(?:as\s+)?you\s+(?:will\s+|may\s+|might\s+)?(?:recall|remember|know)|"
        r"(?:^|(?<=[.\n]))\s*(?:in|during)\s+(?:19|20)\d\d" + _E + "|"
        # a guideline quoted ("Per ASGE PIVI, diminutive rectosigmoid polyps may be left in situ") describes no polyp
        r"(?:per|according\s+to|as\s+per)\s+(?:the\s+)?(?:ASGE|ESGE|BSG|ACG|USMSTF|PIVI|guidelines?)" + _E,
    ),
    # a procedure's name ("检查名称：电子结肠镜 + 内镜下息肉切除术", "结肠镜检查+息肉切除报告") names no polyp
    # of its own
    ("hist_w", r"(?:检查|手术|操作|诊疗)(?:名称|项目)[:：][^\n。]*|息肉(?:切除|摘除)(?:术)?(?:报告|记录)"),
    # an institution's name ("××省肿瘤医院", "Cancer Centre") suspects no cancer
    (
        "hist_w",
        r"(?:肿瘤|癌症|(?:结直肠|大肠|结肠|直肠)?癌)(?:医院|中心|研究所|防治(?:中心|所)?|门诊|专科)|"
        r"(?:cancer|oncology)\s+(?:centre|center|institute|hospital|clinic)",
    ),
    # the programme's name ("bowel cancer screening programme") suspects no cancer
    ("hist_w", r"(?:bowel|colorectal|colon)\s+cancer\s+screening|结直肠癌筛查|大肠癌筛查"),
    # a visit's name after an earlier cancer ("Colorectal Cancer Follow-up") suspects no new one
    ("hist_w", r"(?:bowel|colorectal|colon|rectal)\s+cancer\s+(?:follow-?\s?up|surveillance)"),
    # 'CTC "polyp" not clearly reproduced': the other study's so-called polyp
    (
        "hist_w",
        r"(?:ctc|ct(?:\s+colonography)?|mri|imaging)\s*(?:所示|提示|示)?\s*[\"'\u201c\u201d][^\"'\u201c\u201d]{1,24}"
        r"[\"'\u201c\u201d]",
    ),
    (
        "hist_b",
        r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|several|many)\s+(?:years?|months?)"
        r"\s+ago|(?:in|since|during)\s+(?:19|20)\d\d" + _E + r"|at\s+(?:the\s+)?(?:last|prior|previous|"
        r"index|initial)\s+(?:colonoscopy|exam\w*|procedure)|at\s+that\s+(?:colonoscopy|exam\w*|procedure)|"
        r"previously\s+(?:removed|resected)|"
        r"[(（]\s*(?:19|20)\d\d\s*[)）]",  # "EMR of a transverse colon LST (2022)"
    ),
    # an operation or radiotherapy for a cancer ("Anterior resection in 2022 for rectal cancer", "Post right
    # hemicolectomy (2021, T2N0 caecal adenocarcinoma)", "宫颈癌放疗后") was done before this exam
    (
        "hist_f",
        r"(?:resection|colectomy|proctectomy|surgery|operation|radiotherapy|radiation(?:\s+therapy)?|"
        r"chemo(?:radio)?therapy|chemoradiation)(?:\s+(?:in\s+)?(?:19|20)\d\d)?\s+for" + _E + "|"
        r"post[- ]?\s*(?:(?:right|left|extended|sigmoid|total|subtotal|transverse)\s+)?(?:hemi)?colectomy|"
        r"(?<=[(（])\s*(?:19|20)\d\d(?=\s*[,，;；])|"
        r"(?<![\d/.-])(?:19|20)\d\d(?=\s*[)）])",  # "(2 tubular adenomas 2021)": the bracket is history
    ),
    ("hist_b", r"(?:放|化|放化)疗(?:后|史)"),
    # "(For reference, 2021 polyps: tubular adenoma x 2)"
    ("hist_f", r"for\s+(?:reference|comparison)|(?:19|20)\d\d\s+(?=polyps?|adenomas?|lesions?)"),
    # "Surveillance colonoscopy three years after piecemeal EMR of a 30 mm LST", "an addendum regarding the
    # index colonoscopy": what the time since, or the note about, an earlier exam names is history
    (
        "hist_f",
        r"(?:\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|eighteen)[- ]?\s*"
        r"(?:years?|yrs?|months?|weeks?)\s+(?:after|following|post)" + _E + r"|(?:regarding|concerning|about)\s+"
        r"(?:the\s+)?(?:index|prior|previous|last|earlier|initial)\s+(?:colonoscopy|exam\w*|procedure)",
    ),
    # Chinese
    ("hedge_w", r"考虑[^,;.。]{0,20}?可能"),
    # "小息肉不除外": at the end of its clause it looks back (before "不除外腺瘤" looks forward).
    ("hedge_b", r"(?:不(?:能)?|未能|难以)(?:完全)?(?:除外|排除)(?=\s*(?:[,;.。，；)）]|$))"),
    ("hedge_2", r"待排(?:除)?|待查"),
    (
        "hedge_f",
        r"可疑|疑似|疑为|怀疑|不(?:能)?(?:完全)?除外|不(?:能)?(?:完全)?排除|疑(?=[息腺隆肿癌占新恶])|"
        r"似(?:见|有|为|是)?",
    ),
    ("hedge_b", r"可能(?!为|是)"),
    ("hedge_f", r"可能(?:为|是)(?=\s*(?:一?[枚个]|小|扁平)?\s*(?:息肉|腺瘤))"),  # "小隆起，可能为息肉"
    # "无法判断是否为息肉", "无法判断为息肉或黏附的粪块"
    # ("不能明确是否为扁平息肉": a shape word or two may come first)
    (
        "hedge_f",
        r"是否(?:为|是|系)?(?=[^,，。；;]{0,4}?(?:息肉|腺瘤|病变|隆起))|"
        r"(?<=判断)(?:为|是)(?=[^,，。；;]{0,4}?(?:息肉|腺瘤|病变|隆起))",
    ),
    # "…隆起，表面光滑，性质待定": the nature of a vague elevation or lesion the sentence described is
    # undetermined (back to the sentence start); said of a named polyp it is about its histology.
    (
        "vague_s",
        r"性质(?:待定|未定|不明|待查|(?:无法|难以|不能|未能)(?:判断|确定|明确|判定))|"
        # (after 无法, which the pseudo trigger has taken: "无法判断为息肉或黏附的粪块")
        r"(?:(?<=无法)|(?<=难以)|(?<=不能)|(?<=未能))(?:判断|确定|明确|判定|区分)(?=是否|其?性质|为|是)|(?:nature|significance)\s+(?:undetermined|uncertain|unclear|indeterminate)",
    ),
    ("neg_f", r"(?:并)?非(?=\s*(?:息肉|腺瘤|肿瘤|真性|癌|恶性))|不是(?=\s*(?:息肉|腺瘤|癌|恶性))"),
    ("neg_f", r"未见(?:明显)?|未发现|未(?:触|扪|探|检)及|未检出|未观察到|无(?:明显)?|没有|否认|排除"),
    ("neg_b", r"[:：]\s*[■☑☒✓✔]\s*(?:无|否|未见|阴性)"),  # checkbox forms: "息肉：■无 □有"
    # a form's field answered with a hedge ("Polyp: Suspected", "息肉：可疑")
    (
        "hedge_b",
        r"[:：]\s*(?:suspected|possible|questionable|equivocal|uncertain|not\s+confirmed|unconfirmed|可疑|疑似|待定)"
        r"(?=\s*(?:[,;.。，；\n]|-\s|$))",
    ),
    ("neg_b", r"消失|(?:呈)?阴性|[:：]\s*(?:无|未见|阴性|-)(?=\s*(?:[,;.。]|$))|[(（]\s*-\s*[)）]"),
    (
        "hist_f",
        r"既往|前次|上次|上回|去年|前年|以前|曾(?:于|经|行|因|有)?|如(?:发现|见到?|检出|再见)|(?:\d+|[一二两三四五六七八九十]+|数|多)\s*(?:年|个月|月)余?前|"
        r"(?:19|20)\d\d\s*年|家族|父亲|母亲|哥哥|姐姐|弟弟|妹妹|兄弟|姐妹|子女|筛查|随访|建议|如有|原(?!位)",
    ),
    ("hist_b", r"术后|病?史|复查|随访|筛查|瘢痕|疤痕"),
    # an admission diagnosis written inside a ward note's sentence ("…入院，入院诊断：结肠息肉") precedes the exam
    ("hist_F", r"入院诊断\s*[:：]"),
    (
        "term",
        _B + r"(?:but|however|although|though|except|apart\s+from|aside\s+from|other\s+than|whereas|while|yet|which|"
        r"after|following|then)" + _E + r"|,\s*(?=(?:a|an|one|two|three|there|the|this|it)" + _E + r"|\d)|"
        r"但|然而|另|余|"
        r"(?<=[处旁缘围近])(?:可)?见",  # "原EMR瘢痕处见一息肉": what is seen at an old site is current
    ),
]

# Sentences about bowel preparation: hedged mentions there are disclaimers, not findings.
PREP = r"prep(?:aration)?" + _E + r"|(?-i:BBPS)|boston|bowel\s+cleans|肠道准备|清洁度|肠道清洁|波士顿"

# "Pathology showed ..." inside a findings/impression sentence: what follows is a pathology result.
_PATH_WORD = r"(?:patholog(?:y|ic(?:al)?)|histolog(?:y|ic(?:al)?)|histopatholog(?:y|ical)|biops(?:y|ies))"
PATH_CUE = (
    _PATH_WORD
    + r"\s+(?:results?\s+|report\s+)?(?:(?:has|have)\s+)?(?:now\s+|since\s+)?(?:showed|shows|revealed|reveals|"
    r"returned|come\s+back|confirmed|demonstrated|"
    r"(?:from|of|on)\s+[^:.\n]{0,40}?:|"  # "Histology from today's rectal polyp: hyperplastic polyp"
    r"consistent\s+with|:)|"
    + _PATH_WORD
    + r"(?:\s+(?:results?|report))?\s*:(?=\s*[a-z])|"
    + _PATH_WORD
    + r"\s+addend(?:um|a)(?:\s*\([^()]{0,40}\))?\s*:|"  # "Histology addendum (reported 2 weeks later): ..."
    r"(?:patholog(?:y|ic(?:al)?)|histolog(?:y|ic(?:al)?))\s+(?:was|were|is|are)|"
    r"(?<!既往)(?<!以往)(?<!原)(?<!前次)(?<!上次)病理(?:结果|报告|回报|诊断|检查)?\s*(?:示|提示|回报|为|显示|报告|[:：])|"
    r"病检(?:示|提示|为|[:：])|"
    r"活检(?:病理)?(?:示|提示|为|[:：])"
)

# Summary sentences ("a total of 5 polyps were removed", "共切除息肉5枚").
TOTAL = r"total|in\s+all|altogether|共(?:计)?|总(?:计|共)|合计"

# Section headers -> section kind. Kinds: indication, findings, impression, pathology, plan, other.
SECTION_HEADERS: Table = [
    (
        "indication",
        r"pre-?\s?(?:procedure|operative|op)\s+(?:diagnos[ie]s|dx)|clinical\s+(?:history|information|"
        r"diagnosis|indications?)|reasons?\s+for\s+(?:the\s+)?(?:exam(?:ination)?|procedure|"
        r"referral|colonoscopy|admission)|reasons?|indications?|(?:past\s+)?(?:medical\s+)?history|pmh|"
        r"admission\s+diagnos[ie]s|background|hpi|presenting\s+complaint|referral",
    ),
    (
        "impression",
        r"post-?\s?(?:procedure|operative|op)\s+(?:diagnos[ie]s|dx)|endoscopic\s+(?:diagnos[ie]s|"
        r"impressions?)|impressions?|imp|diagnos[ie]s|dx|conclusions?|summary|assessment",
    ),
    (
        "pathology",
        r"(?:final\s+)?(?:pathologic(?:al)?\s+)?diagnosis\s*\(pathology\)|(?:final\s+)?pathology(?:\s+(?:results?|"
        r"reports?|findings|addend(?:um|a)))?|path|histo(?:path(?:o(?:logy)?)?|logy)?|biopsy\s+results?|hpe|"
        r"microscopic(?:\s+description)?|"
        r"addend(?:um|a)\s+\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}",  # "Addendum 03/18/2024: Pathology returned. …"
    ),
    ("findings", r"(?:endoscopic\s+|colonoscopy\s+|procedure\s+)?findings?|description|procedure(?:\s+details)?"),
    ("plan", r"plan|recommendations?|follow-?\s?up|disposition|advice"),
    (
        "other",
        r"(?:bowel\s+)?prep(?:aration)?(?:\s+quality)?|quality|medications?|sedation|anesth?esia|"
        r"extent(?:\s+of\s+(?:exam|examination))?|withdrawal(?:\s+time)?|complications?|specimens?|"
        r"consent|instruments?|scope",
    ),
    (
        "indication",
        r"临床诊断|临床资料|临床信息|现病史|既往史|家族史|简要病史|病史|主诉|检查(?:目的|原因|指征)|适应[症证]|"
        r"申请(?:目的|理由)|术前诊断|入院(?:诊断|情况)",
    ),
    ("pathology", r"(?:组织)?病理(?:诊断|结果|报告|回报|检查){0,2}|病检(?:结果)?|活检病理"),  # 病理结果回报
    # (a health check's summary, "健康体检总结：结肠息肉（已摘除）", restates the colonoscopy like an impression)
    (
        "impression",
        r"(?:内镜|镜下|镜检|肠镜|检查|初步|术后|最终|出院)?诊断(?:意见)?|(?:内镜|检查)?(?:结论|印象)|(?:健康)?体检总结|总检(?:结论|意见)",
    ),
    ("findings", r"(?:检查|内镜|镜下|肠镜|镜检)?所见|(?:检查|内镜)描述|检查(?:结果|经过)|息肉(?:情况|描述|信息)"),
    # (a note to the patient restates the findings in lay words: "病人須知：直腸有兩粒細小瘜肉，已於檢查時切除")
    ("plan", r"建议|处理(?:意见)?|医嘱|注意事项|随访|(?:病人|患者)(?:须知|須知)|温馨提示|溫馨提示"),
    ("other", r"肠道准备|麻醉(?:方式)?|检查方式|并发症|标本|进镜(?:深度)?|退镜时间"),
]

EN_NUMBERS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "solitary": 1,
    "isolated": 1,
    "another": 1,
    "two": 2,
    "both": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "a couple of": 2,
    "a pair of": 2,
    "a trio of": 3,
    "half a dozen": 6,
    "a dozen": 12,
}
EN_COUNT = (
    r"(?<![A-Za-z\d.#№])(?<!\d:)(?:(?P<times>(?<![A-Za-z])[x×]\s?\d{1,2})|"  # not a ratio's "1:10,000"
    r"(?P<none>a\s+few|a\s+number\s+of|an?\s+(?:handful|cluster|group|crop|carpet|myriad|host|collection)\s+of|"
    r"handfuls?\s+of|hundreds\s+of|scores\s+of|too\s+many\s+to\s+count|several|multiple|numerous|many|innumerable|"
    r"countless|scattered|diffuse|(?:approximately|about|around|roughly|circa|(?:an\s+)?estimated|~|±)\s*\d+(?:\s*(?:-|to|or)\s*\d+)?|some|few|dozens\s+of|(?:more|greater)\s+than\s+\w+|at\s+least\s+\w+|"
    r">\s*\d+|\d+\s*(?:-|to|or)\s*\d+|(?:two|three|four|five|six)\s+(?:to|or)\s+\w+|"
    r"between\s+(?:\d{1,2}|two|three|four|five|six|seven|eight|nine|ten)\s+and\s+\w+)|"
    r"(?P<num>a\s+couple\s+of|a\s+pair\s+of|a\s+trio\s+of|half\s+a\s+dozen|a\s+dozen|an?|one|single|solitary|isolated|another|two|three|four|five|"
    r"six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|"
    r"nineteen|twenty|both|\d{1,2}(?!\s*(?:-|to)\s*\d)))"
    # not "术后6个月", "Mayo 1分", "| 2 | Asc |", "1:10,000"
    r"(?![A-Za-z\d.)、]|,\d{3}|\s*(?:个月|月|年|周|天|日|岁|分|级|期|次|型|\|))"
)
ZH_CLASSIFIER = r"(?:枚|个(?!月)|颗|处|粒|只|块)"  # "6个月" is a time
ZH_COUNT = (
    # "2-3枚", "两三枚", "约20枚": a range or an estimate of counts is no count
    rf"(?P<none>(?:\d{{1,3}}|[一二两三四五六七八九十百]{{1,3}})\s*(?:余|多|来)|数[十百]?|几十?|上百|若干|多数?|"
    rf"\d{{1,2}}\s*[-~～至到]\s*\d{{1,2}}|[一二两三四五六七八][二三四五六七八九]|"
    rf"(?<=约)\s*(?:\d{{1,3}}|[一二两三四五六七八九十]{{1,3}}))"
    rf"\s*{ZH_CLASSIFIER}|多发|散在|弥漫|密集|密布|布满|大量|无数|成簇|"
    rf"(?P<num>\d{{1,2}}|[一二两三四五六七八九十]{{1,3}})\s*{ZH_CLASSIFIER}|(?P<one>单发|单个|孤立)"
)
